"""The syntax of ufw command lines and status listings: ``grammars/ufw.lark``.

Both are parsed tree-less (LALR with the Transformer inside the parser) into
small syntax records — which words are keywords, which keyword holds which
value, which part of a status row is To, Action and From. What the values
mean (addresses, ports, services, application profiles) is read by
:mod:`.ufw_commands` and :mod:`.ufw_status`.

Syntax errors are labelled the way Lark's ``match_examples`` does it: the
failing parser state and token kind are looked up among sample bad inputs
(``_COMMAND_ERRORS``, ``_STATUS_ERRORS``), and located at the offending
token.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from lark import Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken
from lark.lexer import Lexer, PatternStr

from ..errors import RuleAnalyzerError
from ..grammar_loader import lalr_parser
from ..model import Location

#: Shell words: "double" (backslash escapes), 'single', or bare.
_SHELL_WORD = re.compile(r'"((?:[^"\\]|\\.)*)"|\'([^\']*)\'|(\S+)')


# ---------------------------------------------------------------------------
# Command lines: argv lexing
# ---------------------------------------------------------------------------


class ArgvLexer(Lexer):
    """ufw reads an argv: split the line into shell words (quotes removed, a
    ``#`` word ends the command), then give each word the first terminal
    that is legal in the current parser state and matches it whole —
    keywords first, then regex terminals by priority. A word nothing legal
    matches gets the type it has anywhere (a keyword, else WORD) so that the
    parser reports it where it stands."""

    __future_interface__ = 2

    def __init__(self, lexer_conf):
        self.keywords: dict[str, str] = {}
        self.exact: dict[str, str] = {}
        regexes = []
        for term in lexer_conf.terminals:
            if isinstance(term.pattern, PatternStr):
                if "i" in term.pattern.flags:
                    self.keywords[term.pattern.value.lower()] = term.name
                else:
                    self.exact[term.pattern.value] = term.name
            else:
                regexes.append((-term.priority, term.name, re.compile(term.pattern.to_regexp())))
        self.regexes = [(name, rx) for _, name, rx in sorted(regexes)]

    def _keyword(self, word: str) -> str | None:
        return self.exact.get(word) or self.keywords.get(word.lower())

    def lex(self, lexer_state, parser_state):
        text = lexer_state.text.text
        states = parser_state.parse_conf.states
        for m in _SHELL_WORD.finditer(text):
            bare = m.group(3)
            if bare is not None and bare.startswith("#"):
                return  # a shell comment ends the command
            word = next(g for g in m.groups() if g is not None)
            legal = states[parser_state.position]
            kind = self._keyword(word)
            if kind is None or kind not in legal:
                kind = next((name for name, rx in self.regexes if name in legal and rx.fullmatch(word)),
                            kind or "WORD")
            yield Token(kind, word, m.start(), 1, m.start() + 1, 1, m.end() + 1, m.end())


# ---------------------------------------------------------------------------
# Command lines: syntax records
# ---------------------------------------------------------------------------


@dataclass
class Item:
    """One part of a rule after its action: ``dir`` (in/out), ``iface``
    (in/out on IFACE), ``log``, ``comment``, ``clause`` (from/to/port/app/
    proto VALUE) or a bare ``word``."""

    kind: str
    key: Token | None
    value: Token | None = None


@dataclass
class RuleSyntax:
    action: Token
    items: list[Item]
    forward: bool = False
    #: 0: append; -1: prepend; N: insert N (token: where N stands)
    position: int = 0
    position_token: Token | None = None
    delete: bool = False


@dataclass
class CommandSyntax:
    """``kind``: rule, delete-number, default, logging, enable, disable,
    reset, other; ``first``: where the command (after sudo/ufw) starts."""

    kind: str
    first: Token
    rule: RuleSyntax | None = None
    args: list[Token] = field(default_factory=list)


class _Commands(Transformer):
    """Tree-less: every rule of the command grammar reduces to a record."""

    def command_line(self, children):
        command = children[-1]
        flags = [t for t in children[:-1] if t.type in ("DRY_RUN", "FORCE")]
        if flags:
            command.first = flags[0]
        return command

    def rule(self, children):
        return RuleSyntax(children[0], [c if isinstance(c, Item) else
                                        Item("dir" if c.type in ("IN", "OUT") else
                                             "log" if c.type in ("LOG", "LOG_ALL") else "word", c)
                                        for c in children[1:]])

    def iface(self, children):
        return Item("iface", children[0], children[2])

    def comment(self, children):
        return Item("comment", children[0], children[1])

    def clause(self, children):
        return Item("clause", children[0], children[1])

    def rule_cmd(self, children):
        rule = children[-1]
        for i, tok in enumerate(children[:-1]):
            if tok.type == "ROUTE":
                rule.forward = True
            elif tok.type == "PREPEND":
                rule.position = -1
            elif tok.type == "INSERT":
                rule.position_token = children[i + 1]
                rule.position = int(children[i + 1])
        return CommandSyntax("rule", children[0] if isinstance(children[0], Token) else rule.action, rule)

    def delete_rule(self, children):
        command = children[1]
        command.rule.delete = True
        command.first = children[0]
        return command

    def route_delete(self, children):
        rule = children[2]
        rule.forward = rule.delete = True
        return CommandSyntax("rule", children[0], rule)

    def delete_number(self, children):
        return CommandSyntax("delete-number", children[0], args=[children[1]])

    def default(self, children):
        return CommandSyntax("default", children[0], args=children[1:])

    def logging(self, children):
        return CommandSyntax("logging", children[0], args=children[1:])

    def enable(self, children):
        return CommandSyntax("enable", children[0])

    def disable(self, children):
        return CommandSyntax("disable", children[0])

    def reset(self, children):
        return CommandSyntax("reset", children[0])

    def other(self, children):
        return CommandSyntax("other", children[0])


_COMMANDS = _Commands()


def _command_parser():
    # one transformer instance, so lalr_parser's cache builds the tables once
    return lalr_parser("ufw", start="command_line", lexer=ArgvLexer, transformer=_COMMANDS)


@dataclass(frozen=True)
class _Label:
    """What a syntax error means: message and hint templates (``{word}``:
    the offending word, ``{key}``: the word before it) and where it is
    located: at the offending word, or at the word before it."""

    message: str
    hint: str | None = None
    at_key: bool = False


_ACTIONS_HINT = "ufw allow|deny|reject|limit …, default, logging, delete, insert, route"
_UNKNOWN_ACTION = _Label("unknown command or action {word!r}", _ACTIONS_HINT)

#: Sample bad command lines per label, for the match_examples lookup.
_COMMAND_ERRORS: list[tuple[_Label, list[str]]] = [
    (_Label("ufw command without arguments", "e.g. 'ufw allow 22/tcp'"), ["ufw", "ufw --dry-run"]),
    (_UNKNOWN_ACTION, ["ufw frob", "ufw --force frob", "ufw rule frob", "ufw insert 1 frob",
                       "ufw prepend frob", "ufw route frob", "ufw delete frob", "ufw delete route frob",
                       "ufw route delete frob", "ufw route insert 1 frob", "ufw insert 1 route frob",
                       "ufw delete insert 1 frob"]),
    (_Label("missing action", "allow, deny, reject or limit"),
     ["ufw rule", "ufw insert 1", "ufw prepend", "ufw route", "ufw route insert 1", "ufw route delete",
      "ufw insert 1 route", "ufw delete route"]),
    (_Label("delete needs a rule number or a rule"), ["ufw delete"]),
    (_Label("unexpected word after the rule number"), ["ufw delete 1 2"]),
    (_Label("insert needs a rule number (from 1)"), ["ufw insert x", "ufw insert", "ufw route insert x",
                                                     "ufw delete insert x"]),
    (_Label("default needs allow, deny or reject"), ["ufw default", "ufw default x"]),
    (_Label("unknown direction {word!r}", "incoming, outgoing or routed"), ["ufw default deny x"]),
    (_Label("unexpected word"), ["ufw default deny incoming x"]),
    (_Label("logging needs one of on, off, low, medium, high, full"),
     ["ufw logging", "ufw logging x", "ufw logging on x"]),
    (_Label("{key!r} takes no arguments"), ["ufw enable x", "ufw disable x", "ufw reset x"]),
    (_Label("'on' needs an interface name"), ["ufw allow in on"]),
    (_Label("'on' needs 'in' or 'out' before it", "e.g. 'ufw allow in on eth0 to any port 22'"),
     ["ufw allow on", "ufw deny on", "ufw reject on", "ufw limit on", "ufw allow 22 on", "ufw allow x on", "ufw allow x y on", "ufw allow in x on",
      "ufw allow to any on", "ufw allow log on", "ufw allow in on x on", "ufw allow comment x on"]),
    (_Label("option 'comment' missing its argument"), ["ufw allow comment", "ufw allow 22 comment"]),
    (_Label("'port' needs a port number", at_key=True), ["ufw allow port", "ufw allow to any port"]),
    (_Label("'from' needs an address or 'any'", at_key=True), ["ufw allow from", "ufw allow 22 from"]),
    (_Label("'to' needs an address or 'any'", at_key=True), ["ufw allow to", "ufw allow 22 to"]),
    (_Label("'app' needs an application name", at_key=True), ["ufw allow app", "ufw allow 22 app"]),
    (_Label("'proto' needs a protocol", at_key=True), ["ufw allow proto", "ufw allow 22 proto"]),
]

_ACTION_WORDS = ("allow", "deny", "reject", "limit")


def parse_command_syntax(line: str, name: str, lineno: int) -> CommandSyntax:
    """The syntax record of one command line, or a located error."""
    try:
        return _command_parser().parse(line)
    except UnexpectedInput as exc:
        raise _command_error(exc, line, name, lineno) from None


def _failure(exc: UnexpectedInput) -> tuple:
    """Where the parser gave up: its state and the token kind (read now:
    Lark reuses the state object)."""
    stack = getattr(getattr(exc, "state", None), "state_stack", None) or []
    token = getattr(exc, "token", None)
    return (stack[-1] if stack else None, getattr(token, "type", None))


def _with_prefixes(samples: list[str]) -> list[str]:
    """The samples as they also appear: without ``ufw``, behind ``sudo``
    and ufw's flags (each prefix leaves the parser in its own state)."""
    out = []
    for sample in samples:
        rest = sample[len("ufw "):] if sample.startswith("ufw ") else sample[len("ufw"):]
        out += [sample, rest, f"--dry-run {rest}", f"ufw --dry-run {rest}", f"sudo ufw {rest}",
                f"sudo ufw --force {rest}"]
    return [s.strip() for s in out]


_COMMAND_ERRORS = [(label, _with_prefixes(samples)) for label, samples in _COMMAND_ERRORS]
_labels: dict[tuple, _Label | None] = {}


def _label(exc: UnexpectedInput, parse, examples) -> _Label | None:
    """The label of the first sample that fails in the same parser state on
    the same kind of token; failing that, in the same state."""
    bad = _failure(exc)
    key = (id(examples),) + bad
    if key in _labels:
        return _labels[key]
    found = fallback = None
    for label, samples in examples:
        for sample in samples:
            try:
                parse(sample)
            except UnexpectedInput as sample_exc:
                got = _failure(sample_exc)
                if got[0] != bad[0]:
                    continue
                if got[1] == bad[1]:
                    found = label
                    break
                fallback = fallback or label
        if found:
            break
    _labels[key] = found = found or fallback
    return found


def _command_error(exc: UnexpectedInput, line: str, name: str, lineno: int) -> RuleAnalyzerError:
    label = _label(exc, _command_parser().parse, _COMMAND_ERRORS)
    token = getattr(exc, "token", None)
    eol = len(line.rstrip()) + 1
    state = getattr(exc, "state", None)
    before = [v for v in getattr(state, "value_stack", None) or () if isinstance(v, Token)]
    key = before[-1] if before else None
    word = str(token) if token is not None and token.type != "$END" else ""
    if label is None:
        label = _Label(f"unexpected {word!r}" if word else "unexpected end of the command")
    if label is _UNKNOWN_ACTION:
        close = difflib.get_close_matches(word.lower(), _ACTION_WORDS, n=1, cutoff=0.75)
        if close:
            label = _Label("unknown action {word!r}", f"did you mean {close[0]!r}?")
    where = key if label.at_key and key is not None else token
    column = where.column if where is not None and where.type != "$END" else eol
    fill = {"word": word, "key": str(key).lower() if key is not None else ""}
    return RuleAnalyzerError(label.message.format(**fill), Location(name, lineno, column), source_line=line,
                             hint=label.hint.format(**fill) if label.hint else None)


# ---------------------------------------------------------------------------
# Status listings
# ---------------------------------------------------------------------------


@dataclass
class Row:
    """One status row, split into its parts (tokens keep line and column)."""

    to: Token
    action: Token
    frm: Token
    attributes: str = ""
    comment: str = ""
    number: Token | None = None


@dataclass
class StatusSyntax:
    active: bool = True
    logging: Token | None = None
    policies: list[Token] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)


class _Status(Transformer):
    def status(self, children):
        out = StatusSyntax()
        for child in children:
            if isinstance(child, list):
                out.rows = child
            elif child[0] == "status":
                out.active = child[1].strip() == "active"
            elif child[0] == "logging":
                out.logging = child[1]
            elif child[0] == "default":
                out.policies = child[1]
        return out

    def status_line(self, children):
        return ("status", children[0])

    def logging_line(self, children):
        return ("logging", children[0])

    def default_line(self, children):
        return ("default", children)

    def profiles_line(self, children):
        return ("profiles", children[0])

    def table(self, children):
        return [c for c in children if isinstance(c, Row)]

    def row(self, children):
        number = children[0] if children[0].type == "ROW_NUMBER" else None
        rest = children[1:] if number is not None else children
        to, action, frm = rest[:3]
        attributes = next((t[1:-1] for t in rest[3:] if t.type == "ATTRIBUTES"), "")
        comment = next((t[1:].strip() for t in rest[3:] if t.type == "ROW_COMMENT"), "")
        return Row(to, action, frm, attributes, comment, number)


_STATUS = _Status()


def _status_parser():
    return lalr_parser("ufw", start="status", transformer=_STATUS)


_NO_ROW = _Label("a status row is 'TO  ALLOW|DENY|REJECT|LIMIT [IN|OUT|FWD]  FROM'")
_STATUS_ERRORS: list[tuple[_Label, list[str]]] = [
    (_Label("cannot read the default policies",
            "expected 'Default: deny (incoming), allow (outgoing), disabled (routed)'"),
     ["Default: x\n", "Default: x (incoming)\n", "Default: x (incoming), y\n",
      "Default: x (incoming), y (outgoing)\n", "Default: x (incoming), y (outgoing), z\n",
      "Default: x (incoming), y (outgoing), z (routed) w\n", "Default:\n"]),
    (_NO_ROW, ["To Action From\n22\n", "To Action From\n22 ALLOW\n", "To Action From\nALLOW x\n",
               "To Action From\n[ 1] ALLOW x\n", "To Action From\n[ 1]\n",
               "To Action From\n22 ALLOW x # c y\n"]),
]


def parse_status_syntax(text: str, name: str) -> StatusSyntax:
    """The parts of a status listing, or a located error."""
    try:
        return _status_parser().parse(text if text.endswith("\n") else text + "\n")
    except UnexpectedInput as exc:
        label = _label(exc, _status_parser().parse, _STATUS_ERRORS) if not isinstance(
            exc, UnexpectedCharacters) else None
        if label is None:
            label = _Label("unexpected line in ufw status output",
                           "status output starts with 'Status:' and lists rules under a "
                           "'To  Action  From' header")
        lineno, column = exc.line, exc.column
        if isinstance(exc, UnexpectedToken) and exc.token.type == "$END":
            lineno, column = max(1, text.count("\n") + (not text.endswith("\n"))), 1
        lines = text.split("\n")
        source = lines[lineno - 1] if 0 < lineno <= len(lines) else None
        raise RuleAnalyzerError(label.message, Location(name, lineno, max(column, 1)), source_line=source,
                                hint=label.hint) from None
