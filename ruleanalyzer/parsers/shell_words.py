"""Shell command lines of firewall scripts → words, without running a shell.

Command scripts (``iptables -A …`` lists, ``nft add rule …`` lists) are
read line by line as ``sh`` would split them into words: blanks separate
words, single quotes keep everything, double quotes keep everything but
``\\`` escapes, a backslash escapes the next character, a backslash at the
end of a line continues the command on the next one, ``#`` at the start of
a word begins a comment. Here-documents are handed back as text.

Anything that would make the shell compute a word or run something else —
variables, ``$(…)``, backquotes, pipes, lists (``;`` ``&&`` ``||``),
redirections, subshells, loops, functions — is refused with a located
error naming the construct: nothing is ever executed or guessed.

A hand-written scanner rather than a grammar in ``grammars/``: the quoting
rules are per character and the constructs must be named at the column where
they start, which a token grammar of shell would not make simpler.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import RuleAnalyzerError
from ..model import Location

#: Reserved words that open compound commands, and what they are.
_COMPOUND = {"for": "a for loop", "while": "a while loop", "until": "an until loop",
             "if": "an if statement", "case": "a case statement", "select": "a select loop",
             "function": "a function definition", "then": "an if statement",
             "do": "a loop", "done": "a loop", "fi": "an if statement", "esac": "a case statement",
             "{": "a command group { }", "}": "a command group { }", "!": "a negated pipeline",
             "elif": "an if statement", "else": "an if statement"}

_HINT = ("a command script is read, never run: write each command with literal values "
         "(or give the ruleset itself: iptables-save, nft list ruleset)")


@dataclass
class Word:
    """One shell word: its text after quote removal, where it starts (1-based
    column) and the column of each of its characters."""

    text: str
    column: int
    columns: list[int] = field(default_factory=list)
    quoted: bool = False


@dataclass
class Command:
    """One command: its words, the line it starts on and its source text
    (continuation lines joined), and a here-document's text if it has one."""

    words: list[Word]
    line: int
    source: str
    heredoc: str | None = None
    heredoc_line: int = 0
    heredoc_quoted: bool = False


class _Scanner:
    def __init__(self, text: str, name: str):
        self.lines = text.split("\n")
        self.name = name

    def error(self, what: str, line: int, column: int, source: str) -> RuleAnalyzerError:
        return RuleAnalyzerError(f"shell construct: {what} (a command script is read, nothing in it "
                                 "is executed)",
                                 Location(self.name, line, column), source_line=source, hint=_HINT)

    def commands(self):
        index = 0
        lines = self.lines
        while index < len(lines):
            start = index
            source = lines[index].rstrip("\r")
            index += 1
            # a trailing backslash (outside quotes) continues the command
            while _continues(source) and index < len(lines):
                source = source[:-1] + " " + lines[index].rstrip("\r").lstrip()
                index += 1
            words, heredoc = self.split(source, start + 1)
            if not words:
                continue
            command = Command(words, start + 1, source)
            if heredoc is not None:
                delimiter, quoted, column, strip_tabs = heredoc
                body = []
                command.heredoc_line = index + 1
                while True:
                    if index >= len(lines):
                        raise RuleAnalyzerError(
                            f"here-document ends without its delimiter {delimiter!r}",
                            Location(self.name, start + 1, column), source_line=source)
                    body_line = lines[index].rstrip("\r")
                    index += 1
                    if strip_tabs:  # <<-EOF: leading tabs of the body and delimiter go
                        body_line = body_line.lstrip("\t")
                    if body_line == delimiter:
                        break
                    body.append(body_line)
                command.heredoc = "\n".join(body) + "\n"
                command.heredoc_quoted = quoted
            yield command

    def split(self, line: str, lineno: int):
        """The words of ``line`` and its here-document ``(delimiter, quoted,
        column, strip_tabs)``."""
        words: list[Word] = []
        heredoc = None
        i, n = 0, len(line)
        current: Word | None = None

        def fail(what, at):
            raise self.error(what, lineno, at + 1, line)

        while i < n:
            c = line[i]
            if c in " \t":
                if current is not None:
                    words.append(current)
                    current = None
                    self.compound(words, lineno, line)
                i += 1
                continue
            if current is None:
                if c == "#":
                    break  # a comment to the end of the line
                current = Word("", i + 1)
            if c == "'":
                end = line.find("'", i + 1)
                if end < 0:
                    fail("an unterminated single quote", i)
                for k in range(i + 1, end):
                    current.text += line[k]
                    current.columns.append(k + 1)
                current.quoted = True
                i = end + 1
                continue
            if c == '"':
                i += 1
                while True:
                    if i >= n:
                        fail("an unterminated double quote", current.column - 1)
                    d = line[i]
                    if d == '"':
                        i += 1
                        break
                    if d == "\\" and i + 1 < n and line[i + 1] in '$`"\\':
                        i += 1
                        d = line[i]
                    elif d == "$":
                        fail(_dollar(line, i), i)
                    elif d == "`":
                        fail("command substitution `…`", i)
                    current.text += d
                    current.columns.append(i + 1)
                    i += 1
                current.quoted = True
                continue
            if c == "\\":
                if i + 1 < n:
                    current.text += line[i + 1]
                    current.columns.append(i + 2)
                i += 2
                continue
            if c == "$":
                fail(_dollar(line, i), i)
            if c == "`":
                fail("command substitution `…`", i)
            if c in "|&;<>()":
                if line.startswith("<<", i) and not line.startswith("<<<", i):
                    if current.text or current.quoted:
                        words.append(current)
                    current = None
                    if heredoc is not None:
                        fail("a second here-document", i)
                    heredoc, i = self._heredoc(line, i, fail)
                    continue
                self.compound(words, lineno, line)
                fail(_operator(line, i, bool(current.text) or current.quoted), i)
            if c == "=" and not words and not current.quoted and current.text and \
                    current.text.replace("_", "a").isalnum():
                fail(f"a variable assignment {current.text}=…", current.column - 1)
            current.text += c
            current.columns.append(i + 1)
            i += 1
        if current is not None and (current.text or current.quoted):
            words.append(current)
        self.compound(words, lineno, line)
        return words, heredoc

    def compound(self, words: list[Word], lineno: int, line: str) -> None:
        """A line that opens a loop, an if, a function …: named as such."""
        if words and not words[0].quoted and words[0].text in _COMPOUND:
            raise self.error(_COMPOUND[words[0].text], lineno, words[0].column, line)

    def _heredoc(self, line: str, i: int, fail):
        j = i + 2
        strip_tabs = j < len(line) and line[j] == "-"
        if strip_tabs:
            j += 1
        while j < len(line) and line[j] in " \t":
            j += 1
        start = j
        quoted = False
        delimiter = ""
        while j < len(line) and line[j] not in " \t|&;<>()":
            if line[j] in "'\"":
                quote = line[j]
                end = line.find(quote, j + 1)
                if end < 0:
                    fail("an unterminated quote in a here-document delimiter", j)
                delimiter += line[j + 1:end]
                quoted = True
                j = end + 1
                continue
            if line[j] == "\\":
                quoted = True
                j += 1
                continue
            delimiter += line[j]
            j += 1
        if not delimiter:
            fail("a here-document without a delimiter", start)
        return (delimiter, quoted, i + 1, strip_tabs), j


def _continues(line: str) -> bool:
    """Whether ``line`` ends with a backslash that escapes the newline."""
    count = len(line) - len(line.rstrip("\\"))
    return count % 2 == 1 and not line.lstrip().startswith("#")


def _dollar(line: str, i: int) -> str:
    rest = line[i + 1:]
    if rest.startswith("(("):
        return "arithmetic expansion $((…))"
    if rest.startswith("("):
        return "command substitution $(…)"
    if rest.startswith("{"):
        end = rest.find("}")
        return f"a variable ${{{rest[1:end] if end > 0 else '…'}}}"
    name = ""
    for ch in rest:
        if ch.isalnum() or ch == "_":
            name += ch
        else:
            break
    if not name and rest[:1] in "@*#?$!-0123456789" and rest:
        name = rest[0]
    return f"a variable ${name}" if name else "a $ expansion"


def _operator(line: str, i: int, in_word: bool) -> str:
    two = line[i:i + 2]
    if two == "&&":
        return "an and-list &&"
    if two == "||":
        return "an or-list ||"
    c = line[i]
    return {"|": "a pipe |", "&": "a background job &", ";": "a command list ;",
            "<": "a redirection <", ">": "a redirection >",
            "(": "a function definition ()" if in_word and line[i:i + 2] == "()" else "a subshell ( )",
            ")": "a subshell ( )"}[c]


def commands(text: str, name: str):
    """The commands of a script, in order (see the module's docstring)."""
    yield from _Scanner(text, name).commands()


def is_set_builtin(words: list[Word]) -> bool:
    """``set -e``, ``set -eu``, ``set -o errexit``: options only, harmless."""
    if not words or words[0].text != "set" or words[0].quoted:
        return False
    rest = [w.text for w in words[1:]]
    k = 0
    while k < len(rest):
        if len(rest[k]) < 2 or rest[k][0] not in "-+":
            return False
        k += 2 if rest[k].endswith("o") else 1  # -o pipefail, -euo pipefail
    return True


#: Commands a firewall script runs beside the firewall's own that change no
#: rule: skipped (the host-state ones said as info: they are not analysed).
PRINTING = frozenset({"echo", "printf", "true", ":", "sleep", "logger"})
HOST_STATE = frozenset({"modprobe", "sysctl"})


def skipped_note(words: list[Word], name: str, line: int):
    """The info diagnostic for a skipped host-state command (``sysctl -w
    net.ipv4.ip_forward=1``), or None for a printing one."""
    from ..model import Diagnostic

    if program(words[0]) not in HOST_STATE:
        return None
    return Diagnostic(f"{program(words[0])} changes the host, not the rules; skipped (a host snapshot "
                      "from `ruleanalyzer collect` carries such settings)", Location(name, line, words[0].column),
                      level="info")


def program(word: Word) -> str:
    """The program a command word names (``/usr/sbin/iptables`` → ``iptables``)."""
    return word.text.rsplit("/", 1)[-1]
