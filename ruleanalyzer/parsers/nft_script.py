"""Scripts of ``nft`` commands → the rule model.

``nft add table inet filter``, ``nft 'add rule inet filter input tcp dport
22 accept'``, ``nft -f - <<'EOF' … EOF``: nft joins its arguments with
blanks and reads them as one line of ``nft -f`` input, so a script of nft
commands is read by building that input — each command's words at the
line and (as far as quoting allows) the column they were written at — and
handing it to the nftables reader (:mod:`.nftables`), which applies
``add``/``insert``/``delete``/``flush`` commands in order to an empty
ruleset. Here-documents are ruleset text placed at their own lines.

Lines are split into words as the shell would (:mod:`.shell_words`); shell
constructs are a located error naming the construct. Nothing is run.
"""

from __future__ import annotations

import re

from ..errors import RuleAnalyzerError, line_of
from ..model import Diagnostic, Location, Ruleset
from . import nftables, shell_words

__all__ = ["parse", "sniff"]

_NFT_LINE = re.compile(r"^\s*(?:sudo\s+)?(?:/[\w/.-]*/)?nft\s+\S", re.M)
#: nft options that change nothing in how the commands read
_QUIET_OPTIONS = {"-a", "--handle", "-e", "--echo", "-n", "--numeric", "-s", "--stateless",
                  "-N", "--reversedns", "-S", "--service", "-y", "--numeric-priority",
                  "-p", "--numeric-protocol", "-T", "--numeric-time", "-t", "--terse"}
_LIST_VERBS = {"list", "monitor", "describe", "export"}


def sniff(text: str, name: str = "<input>") -> int:
    """Scripts whose commands are ``nft …`` lines."""
    return 95 if _NFT_LINE.search(text[:20000]) else 0  # above nft text in its here-documents


def parse(text: str, name: str = "<input>") -> Ruleset:
    """Apply the nft commands of the script ``text`` to an empty ruleset."""
    lines = ["" for _ in range(text.count("\n") + 1)]
    diagnostics: list[Diagnostic] = []
    sources: dict[int, str] = {}
    found = False
    for command in shell_words.commands(text, name):
        words = command.words
        if shell_words.is_set_builtin(words):
            continue
        if words[0].text == "sudo" and len(words) > 1:
            words = words[1:]
        program = shell_words.program(words[0])
        if program == "exit":
            break
        if program in shell_words.PRINTING or program in shell_words.HOST_STATE:
            note = shell_words.skipped_note(words, name, command.line)
            if note is not None:
                diagnostics.append(note)
            continue
        if program != "nft":
            raise _at(name, command, words[0], f"{words[0].text!r} is not an nft command",
                      "a command script holds nft commands, comments and set -e; "
                      "nothing else is run or guessed")
        args = words[1:]
        from_stdin = False
        check_only = False
        while args and args[0].text.startswith("-") and not args[0].quoted:
            option = args[0].text
            if option in ("-f", "--file"):
                if len(args) < 2 or args[1].text != "-":
                    raise _at(name, command, args[0], "nft -f FILE reads another file",
                              "give that file to ruleanalyzer; here only nft -f - with a "
                              "here-document is read")
                from_stdin = True
                args = args[2:]
                continue
            if option in ("-c", "--check"):
                check_only = True
            elif option in ("-j", "--json"):
                raise _at(name, command, args[0], "nft -j (JSON) commands in a script are not read",
                          "give the JSON ruleset itself (nft -j list ruleset)")
            elif option not in _QUIET_OPTIONS:
                raise _at(name, command, args[0], f"nft option {option} is not understood here")
            args = args[1:]
        if from_stdin:
            if command.heredoc is None:
                raise _at(name, command, words[0], "nft -f - without a here-document",
                          "write the ruleset in a here-document: nft -f - <<'EOF' … EOF")
            if not command.heredoc_quoted and ("$" in command.heredoc or "`" in command.heredoc):
                body_line = next(k for k, ln in enumerate(command.heredoc.split("\n"))
                                 if "$" in ln or "`" in ln)
                lineno = command.heredoc_line + body_line
                source = line_of(text, lineno) or ""
                column = min(i for i in (source.find("$"), source.find("`")) if i >= 0) + 1
                raise RuleAnalyzerError(
                    "shell construct: a $ or ` in a here-document whose delimiter is not quoted "
                    "(the shell would expand it); nothing in a command script is executed",
                    Location(name, lineno, column), source_line=source,
                    hint="quote the delimiter (<<'EOF') so the text reaches nft as written")
            if check_only:
                continue
            for k, body in enumerate(command.heredoc.split("\n")):
                if command.heredoc_line + k - 1 < len(lines):
                    lines[command.heredoc_line + k - 1] = body
            found = True
            continue
        if command.heredoc is not None:
            raise _at(name, command, words[0], "a here-document without nft -f -")
        if not args:
            raise _at(name, command, words[0], "nft without a command")
        if args[0].text.split(None, 1)[0] in _LIST_VERBS or check_only:
            diagnostics.append(Diagnostic(f"nft {args[0].text.split(None, 1)[0]} changes no rule; "
                                          "the line is skipped", Location(name, command.line, 1),
                                          level="info"))
            continue
        lines[command.line - 1] = _placed(args)
        sources[command.line] = command.source
        found = True
    if not found:
        raise RuleAnalyzerError("no nft command found", Location(name, 1, 1),
                                hint="a command script holds lines such as "
                                     "'nft add rule inet filter input tcp dport 22 accept'")
    try:
        ruleset = nftables.parse("\n".join(lines), name)
    except RuleAnalyzerError as exc:
        loc = exc.location
        if loc is not None and loc.file == name and loc.line in sources:
            exc.source_line = sources[loc.line]
        raise
    ruleset.diagnostics[:0] = diagnostics
    return ruleset


def _placed(words: list[shell_words.Word]) -> str:
    """The words as nft receives them (joined by blanks), each placed at
    the column it was written at when that leaves room, so that the nft
    reader's locations point into the script's line."""
    out = ""
    for w in words:
        column = w.columns[0] if w.columns else w.column
        if len(out) < column - 1:
            out += " " * (column - 1 - len(out))
        elif out:
            out += " "
        out += w.text
    return out


def _at(name: str, command, word, message: str, hint: str | None = None) -> RuleAnalyzerError:
    return RuleAnalyzerError(message, Location(name, command.line, word.column),
                             source_line=command.source, hint=hint)
