"""iptables command scripts and ``iptables -S`` output → the rule model.

Two inputs admins have instead of an ``iptables-save`` dump:

- ``iptables -S`` / ``ip6tables -S`` output: ``-P``, ``-N`` and ``-A`` lines
  without ``*table`` or ``COMMIT`` lines — one table, ``filter`` unless
  another is named;
- command scripts: lines of ``iptables``, ``ip6tables``, ``iptables-legacy``,
  ``iptables-nft`` (…) commands with ``-t``, ``-A -I -N -P -F -X -D -R -Z``
  and their long forms, a shebang, comments, blank lines, ``set -e``.

Each command is applied in order, exactly as it would change an empty
ruleset (``-I`` positions, ``-D`` by specification or number, ``-F``,
``-X``) with the checks of :mod:`.iptables` (the same rule interpreter and
state machine as iptables-restore input). Lines are split into words as the
shell would (:mod:`.shell_words`); a line with shell constructs is a
located error naming the construct. Nothing is run.
"""

from __future__ import annotations

import os
import re

from ..errors import RuleAnalyzerError
from ..model import IPTABLES_BUILTIN_CHAINS, Diagnostic, Location, Ruleset
from . import shell_words
from .iptables import _FileParser, detect_family
from .iptables_rulespec import COMMANDS, PRINT_COMMANDS

__all__ = ["parse", "sniff", "PROGRAMS"]

#: program name → address family
PROGRAMS = {"iptables": "ip", "iptables-legacy": "ip", "iptables-nft": "ip",
            "ip6tables": "ip6", "ip6tables-legacy": "ip6", "ip6tables-nft": "ip6"}
#: options that only tune how iptables runs: option → how many arguments
_RUN_OPTIONS = {"-w": -1, "--wait": -1, "-W": 1, "--wait-interval": 1, "-v": 0, "--verbose": 0,
                "-n": 0, "--numeric": 0, "-x": 0, "--exact": 0, "--line-numbers": 0}
_CHECK_COMMANDS = {"-C", "--check"}

_PROGRAM_LINE = re.compile(r"^\s*(?:sudo\s+)?(?:/[\w/.-]*/)?(?:ip6?tables(?:-legacy|-nft)?)\s", re.M)
_COMMAND_LINE = re.compile(r"^\s*-[APNIX] \S", re.M)
_TABLE_LINE = re.compile(r"^\s*\*\w+\s*$", re.M)


def sniff(text: str, name: str = "<input>") -> int:
    """Scripts of iptables commands and ``iptables -S`` output (no ``*table`` line)."""
    head = text[:20000]
    if _TABLE_LINE.search(head):
        return 0
    if _PROGRAM_LINE.search(head):
        return 80
    if _COMMAND_LINE.search(head) and re.search(r"^\s*-(A|P) ", head, re.M):
        return 70  # above iptables-save's 20 for "-A" lines without a table
    return 0


def parse(text: str, name: str = "<input>", *, table: str | None = None,
          family: str | None = None) -> Ruleset:
    """Apply the commands of ``text`` to an empty ruleset. ``table``: the
    table of commands without ``-t`` (``iptables -t nat -S`` output);
    ``family`` overrides the one of lines without a program name."""
    default_table = table or "filter"
    if default_table not in IPTABLES_BUILTIN_CHAINS:
        raise RuleAnalyzerError(f"unknown table {default_table!r} (known: "
                                f"{', '.join(IPTABLES_BUILTIN_CHAINS)})")
    runner = _ScriptParser(text, name, family or detect_family(text, name), default_table)
    try:
        ruleset = runner.apply()
    except RecursionError:
        raise RuleAnalyzerError("input nests too deeply", Location(name)) from None
    if family is None and runner.used_default_family and not _family_evidence(text, name):
        ruleset.diagnostics.append(Diagnostic(
            "IPv4 assumed: nothing in the text says which family these -P/-N/-A lines are for "
            "(ip6tables -S output is read as IPv6 when it holds an IPv6 address or match, or its "
            "file name says v6)", Location(name, 1, 1), level="info"))
    return ruleset


def _family_evidence(text: str, name: str) -> bool:
    """Whether the family of lines without a program name is written down:
    an address, a family-only match, or a file name saying v6."""
    from . import iptables

    return bool(iptables._V6_ADDR.search(text) or iptables._V4_ADDR.search(text)
                or iptables._V6_HINT.search(text) or iptables._V4_HINT.search(text)
                or iptables._V6_NAME.search(os.path.basename(name)))


class _ScriptParser(_FileParser):
    """The iptables-restore state machine, driven one command at a time."""

    lazy = False  # its lines are commands (words as the shell splits them)

    def __init__(self, text: str, name: str, family: str, default_table: str):
        super().__init__(text, name, family)
        self.default_family = family
        self.default_table = default_table
        self.columns: list[int] = []
        self.used_default_family = False
        self.ruleset.meta["dialect"] = "iptables"

    def error(self, message: str, lineno: int, line: str, index: int = 0,
              hint: str | None = None) -> RuleAnalyzerError:
        columns = self.columns
        column = columns[index] if 0 <= index < len(columns) else len(line.rstrip()) + 1
        return RuleAnalyzerError(message, Location(self.name, lineno, column), source_line=line,
                                 hint=hint)

    def apply(self) -> Ruleset:
        for command in shell_words.commands(self.text, self.name):
            if self.command(command) == "exit":
                break
        for table in self.ruleset.tables:
            self.check_jumps(table)
        if not self.ruleset.tables:
            raise RuleAnalyzerError("no iptables command found", Location(self.name, 1, 1),
                                    hint="a command script holds lines such as "
                                         "'iptables -A INPUT -p tcp --dport 22 -j ACCEPT'")
        return self.ruleset

    def command(self, command: shell_words.Command) -> str | None:
        words = command.words
        line, lineno = command.source, command.line
        if command.heredoc is not None:
            raise self._at("a here-document feeds no iptables command", command, words[0])
        if shell_words.is_set_builtin(words):
            return None
        first = words[0]
        if first.text == "sudo" and len(words) > 1:
            words = words[1:]
            first = words[0]
        name = shell_words.program(first)
        if name == "exit":
            return "exit"
        if name in shell_words.PRINTING or name in shell_words.HOST_STATE:
            note = shell_words.skipped_note(words, self.name, lineno)
            if note is not None:
                self.ruleset.diagnostics.append(note)
            return None
        family = PROGRAMS.get(name)
        if family is None:
            if first.text.startswith("-") and not first.quoted:
                family = self.default_family  # iptables -S output: no program name
                self.used_default_family = True
            elif name in ("nft", "iptables-restore", "ip6tables-restore", "iptables-save",
                          "ip6tables-save"):
                raise self._at(f"{name} in an iptables command script", command, first,
                               hint="give the ruleset itself (iptables-save, nft list ruleset), "
                                    "or a script of one kind of command")
            else:
                raise self._at(f"{first.text!r} is not an iptables command", command, first,
                               hint="a command script holds iptables/ip6tables commands, "
                                    "comments and set -e; nothing else is run or guessed")
        else:
            words = words[1:]
        table_name, words = self.options(words, command)
        if not words:
            raise self._at("iptables without a command", command, first)
        head = words[0].text
        if head in PRINT_COMMANDS or head in _CHECK_COMMANDS:
            self.ruleset.diagnostics.append(Diagnostic(
                f"{head} changes no rule; the line is skipped", Location(self.name, lineno, words[0].column),
                level="info"))
            return None
        if head not in COMMANDS:
            raise self._at(f"{head} is not an iptables command (expected -A, -I, -N, -P, -D, ...)",
                           command, words[0])
        self.family = family
        table = self.ruleset.table(table_name, family)
        if table is None:
            table = self.create_table(table_name, Location(self.name, lineno, first.column))
        self.table = table
        raws = [_raw(w) for w in words]
        texts = [w.text for w in words]
        self.columns = [w.column for w in words]
        self.rule_line(lineno, line, " ".join(raws), raws, texts, None)
        return None

    def options(self, words: list[shell_words.Word], command) -> tuple[str, list]:
        """The table named by ``-t`` (anywhere on the line), and the words
        without ``-t`` and the options that only tune how iptables runs."""
        table = self.default_table
        kept = []
        k = 0
        while k < len(words):
            w = words[k]
            text = w.text
            if text in ("-t", "--table") or text.startswith("--table="):
                if "=" in text:
                    value = text.partition("=")[2]
                else:
                    if k + 1 >= len(words):
                        raise self._at(f"option {text} needs a table name", command, w)
                    k += 1
                    value = words[k].text
                if value not in IPTABLES_BUILTIN_CHAINS:
                    raise self._at(f"unknown table {value!r} (known: "
                                   f"{', '.join(IPTABLES_BUILTIN_CHAINS)})", command, words[k])
                table = value
            elif text in _RUN_OPTIONS:
                wanted = _RUN_OPTIONS[text]
                if wanted == 1 or (wanted == -1 and k + 1 < len(words) and words[k + 1].text.isdigit()):
                    k += 1
            else:
                kept.append(w)
            k += 1
        return table, kept

    def _at(self, message: str, command, word, hint: str | None = None) -> RuleAnalyzerError:
        return RuleAnalyzerError(message, Location(self.name, command.line, word.column),
                                 source_line=command.source, hint=hint)


def _raw(word: shell_words.Word) -> str:
    """The word as iptables-save would write it (double quotes around blanks)."""
    text = word.text
    if word.quoted and (not text or any(c.isspace() for c in text) or text.startswith("-")):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text
