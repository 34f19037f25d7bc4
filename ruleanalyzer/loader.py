"""Reading rule files from disk into one :class:`~ruleanalyzer.model.Ruleset`."""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import operator
import os
import stat
import zlib
from array import array
from pathlib import Path

from . import parsers
from .errors import RuleAnalyzerError
from .json_lines import add_lines
from .model import Location, Rule, Ruleset

#: Files larger than this are refused before reading (configurable through
#: the ``max_bytes`` argument and ``--max-bytes``).
DEFAULT_MAX_BYTES = 256 * 1024 * 1024


#: Dialects whose empty output is a real answer: ``nft list ruleset`` prints
#: nothing when no ruleset is loaded.
EMPTY_MEANS_NO_RULES = frozenset({"nftables"})


def refuse_empty(text: str, name: str, dialect: str | None) -> None:
    """An empty file is bad input (issue: "Empty file … exit 2"), except
    where the dialect's own tool prints nothing for "no rules"."""
    if text.strip() or dialect in EMPTY_MEANS_NO_RULES:
        return
    raise RuleAnalyzerError("the file is empty", Location(name, 1, 1),
                            hint="an empty export has no rules to analyse; an empty `nft list ruleset` "
                                 "(no ruleset loaded) is read with --dialect nftables")


#: The files read, by the name they were read under: the text shown in code
#: frames, so a finding never re-opens its file (the file may have changed,
#: or be a FIFO, since). The latest :data:`MAX_KEPT_CHARS` characters' worth
#: are kept (older ones are dropped first; their frames show the rule's own
#: text). Cleared by :func:`forget_texts`. A text of
#: :data:`COMPRESS_KEPT_FROM` characters or more is kept compressed (zlib,
#: fastest level) once an audit has read its input (:func:`pack_texts`), and
#: unpacked when a frame first asks for it: the text of 100k kube-proxy rules is 17 MiB,
#: live beside the rules' own texts through the whole audit and its peak;
#: 2.4 MiB compressed, for 0.07 s CPU. The rules' texts that are their
#: lines' are then read from it too (:class:`_SourcedRule`).
_TEXTS: dict[str, tuple[int, "str | _Source"]] = {}
MAX_KEPT_CHARS = 64 * 1024 * 1024
COMPRESS_KEPT_FROM = 1 << 20
_kept_chars = 0
#: ``(name, the kept _Source, its text)``: the text unpacked last, so that
#: a report's frames of one file unpack it once and get one object.
_unpacked: tuple | None = None


def _keep_text(name: str, text: str) -> None:
    global _kept_chars
    old = _TEXTS.pop(name, None)
    _kept_chars -= old[0] if old is not None else 0
    _TEXTS[name] = (len(text), text)  # (compressed once read: pack_texts)
    _kept_chars += len(text)
    while _kept_chars > MAX_KEPT_CHARS and len(_TEXTS) > 1:
        _kept_chars -= _TEXTS.pop(next(iter(_TEXTS)))[0]


def pack_texts(rulesets=()) -> None:
    """Compress the kept texts of :data:`COMPRESS_KEPT_FROM` characters or
    more, once their files are read (not while a reader holds the text: a
    compressed copy beside it put +3-7 MiB on the peak of reading 100k
    rules). The audit calls this before its analyses, whose peak is the
    process's; a short command (``query``) does not: compressing the text
    of 100k rules is ~0.05 s, 5 % of such a query.

    The rules of ``rulesets`` whose text is their line of such a text from
    their column on, less trailing blanks (an iptables rule's), then read
    it from the packed text when asked (:class:`_SourcedRule`): at 100k
    kube-proxy rules their own copies were 17 MiB of the audit's peak."""
    for name, (size, kept) in list(_TEXTS.items()):
        if isinstance(kept, str) and size >= COMPRESS_KEPT_FROM:
            _TEXTS[name] = (size, _Source(kept))
    sources = {name: kept for name, (_size, kept) in _TEXTS.items() if isinstance(kept, _Source)}
    for ruleset in rulesets:
        _source_rules(ruleset, sources)
    for source in sources.values():
        source.packed()


#: A rule's own ``text`` slot (in a _SourcedRule, the _Source it is read from)
_RULE_TEXT = Rule.__dict__["text"]


class _SourcedRule(Rule):
    """A Rule whose ``text`` is read from the packed text of its file when
    asked (:func:`pack_texts`): the string read, made again."""

    __slots__ = ()

    @property
    def text(self) -> str:
        kept = _RULE_TEXT.__get__(self, Rule)
        if kept.__class__ is _Source:
            where = self.location
            return kept.line_tail(where.line, where.column)
        return kept

    @text.setter
    def text(self, value: str) -> None:
        _RULE_TEXT.__set__(self, value)


def _source_rules(ruleset: Ruleset, sources: dict) -> None:
    """Make the rules of ``ruleset`` read their text from ``sources`` (file
    name -> _Source, its text still there) where it is exactly their line's
    from their column on, less the trailing blanks (checked on the text)."""
    sources = {name: source for name, source in sources.items() if source.text is not None}
    if not sources:
        return
    set_text = _RULE_TEXT.__set__
    for chain in ruleset.chains():
        for rule in chain.rules:
            where, text = rule.location, rule.text
            source = sources.get(where.file) if where is not None else None
            if source is None or not text or rule.__class__ is not Rule or where.path is not None \
                    or text[-1].isspace():
                continue
            span = source.line_span(where.line, where.column)
            if span is None:
                continue
            start, end = span
            stop = start + len(text)
            whole = source.text
            if stop <= end and whole.startswith(text, start) and (stop == end or whole[stop:end].isspace()):
                rule.__class__ = _SourcedRule
                set_text(rule, source)


class _Source:
    """A kept text compressed (zlib, fastest level) in blocks of
    :attr:`BLOCK` characters, each unpacked alone, and where its lines
    start: a line's tail is read from the block or two holding it (the
    last few unpacked are kept; a reader going all over the text gets it
    unpacked whole, once, :attr:`MISSES`)."""

    __slots__ = ("size", "blocks", "starts", "text", "_unpacked", "_misses")

    BLOCK = 1 << 18
    #: Blocks unpacked, past which the whole text is unpacked and kept
    #: (this many times the blocks): a reader of rules out of file order.
    MISSES = 4
    #: Blocks kept unpacked.
    KEEP = 4

    def __init__(self, text: str):
        step = self.BLOCK
        self.size = len(text)
        # (each block a MiB of UTF-8 at most: no whole encoded copy beside the text)
        self.blocks = [zlib.compress(text[i:i + step].encode("utf-8"), 1) for i in range(0, len(text), step)]
        self.starts = None
        #: the text itself while rules are matched against it
        #: (:func:`pack_texts`) or once unpacked whole; None otherwise
        self.text: str | None = text
        self._unpacked: dict = {}
        self._misses = 0

    def packed(self) -> None:
        """The rules are matched: the text goes (its line starts stay)."""
        self.text = None
        self._unpacked.clear()

    def whole(self) -> str:
        if self.text is not None:
            return self.text
        return "".join(zlib.decompress(b).decode("utf-8") for b in self.blocks)

    def line_span(self, line: int, column: int):
        """``(start, end)`` of line ``line`` (from 1) from ``column`` (from
        1) to its end (its newline excluded), or None."""
        starts = self.starts if self.starts is not None else self.line_starts()
        if not 0 < line <= len(starts) or column < 1:
            return None
        start = starts[line - 1] + column - 1
        end = starts[line] - 1 if line < len(starts) else self.size
        return (start, end) if start <= end else None

    def line_starts(self) -> array:
        """Where each line of the text starts (made once, while the text is here)."""
        parts = self.text.split("\n")
        parts.pop()
        # the ends of the lines, their newlines counted: line i + 1 starts there
        ends = itertools.accumulate(map(len, parts))
        self.starts = array("I" if self.size < 1 << 32 else "Q", [0])
        self.starts.extend(map(operator.add, ends, itertools.count(1)))
        return self.starts

    def line_tail(self, line: int, column: int) -> str:
        """The text of ``line`` from ``column`` on, less trailing blanks."""
        start, end = self.line_span(line, column)
        if self.text is None:
            step = self.BLOCK
            first, last = start // step, max(start, end - 1) // step
            parts = [self._block(i) for i in range(first, last + 1)]
            if self.text is None:  # (else unpacked whole meanwhile)
                base = first * step
                return "".join(parts)[start - base:end - base].rstrip()
        return self.text[start:end].rstrip()

    def _block(self, i: int) -> str:
        unpacked = self._unpacked
        found = unpacked.pop(i, None)
        if found is None:
            self._misses += 1
            if self._misses > self.MISSES * len(self.blocks) + self.KEEP:
                self.text = self.whole()
                unpacked.clear()
                return ""
            found = zlib.decompress(self.blocks[i]).decode("utf-8")
            if len(unpacked) >= self.KEEP:
                del unpacked[next(iter(unpacked))]
        unpacked[i] = found
        return found


def text_read(name: str) -> str | None:
    """The text :func:`read_text` read under ``name`` in this process, if any."""
    global _unpacked
    found = _TEXTS.get(name)
    if found is None:
        return None
    kept = found[1]
    if isinstance(kept, str):
        return kept
    if _unpacked is None or _unpacked[0] != name or _unpacked[1] is not kept:
        _unpacked = (name, kept, kept.whole())
    return _unpacked[2]


def forget_texts() -> None:
    global _kept_chars, _unpacked
    _TEXTS.clear()
    _kept_chars = 0
    _unpacked = None


def is_inside(real: str, root: str) -> bool:
    """Whether the resolved path ``real`` is ``root`` or under it."""
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def refuse_escape(path: str | os.PathLike, root: str | os.PathLike | None = None) -> None:
    """A path that leads out of ``root`` through symlinks (without ``root``:
    a symlink leading out of the directory holding it) is refused before it
    is opened: a pull request committing
    ``fw/env.rules -> /proc/self/environ`` must not get the CI job's
    environment printed back in a code frame."""
    name = str(path)
    if root is None and not os.path.islink(name):
        return
    base = os.path.realpath(root if root is not None else os.path.dirname(os.path.abspath(name)))
    real = os.path.realpath(name)
    if not is_inside(real, base):
        raise RuleAnalyzerError(f"symlink to {real!r}, outside the directory given {base!r}; not read",
                                Location(name),
                                hint="links may only point inside the tree being analysed; "
                                     "name the target itself if it really is a rule file")


class FileSide:
    """Where companion files (an nft ``include``) of a rule file come from:
    the working tree here; :class:`ruleanalyzer.gitfiles.RevisionSide`
    reads them at a git revision, so the old side of ``diff --git`` never
    mixes in today's included files. Readers ask :func:`current_side`.
    ``max_bytes`` bounds what one ruleset reads, its companions together."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES):
        self.max_bytes = max_bytes

    def path_of(self, name: str) -> str:
        """The working-tree path a file shown as ``name`` stands for."""
        return name

    def name_of(self, path: str) -> str:
        """How a file read from working-tree ``path`` is shown."""
        return path

    def is_file(self, path: str) -> bool:
        return os.path.isfile(path)

    def is_dir(self, path: str) -> bool:
        return os.path.isdir(path)

    def glob(self, pattern: str) -> list[str]:
        import glob

        return sorted(glob.glob(pattern))

    def files(self, directory: str | os.PathLike, pattern: str) -> list[Path]:
        """The files directly in ``directory`` whose name matches ``pattern``
        (a directory's reader: a Terraform module's ``*.tf``), by name."""
        return sorted(f for f in Path(directory).glob(pattern) if f.is_file())

    def real(self, path: str | os.PathLike) -> Path:
        """``path`` absolute, as the reader compares it with the tree it may
        not leave (links resolved)."""
        return Path(path).resolve()

    def head(self, path: str | os.PathLike, limit: int) -> str | None:
        """The first ``limit`` bytes of ``path`` as text, None when unreadable
        (a quick scan before the file is read)."""
        try:
            with open(path, "rb") as handle:
                return handle.read(limit).decode("utf-8", errors="replace")
        except OSError:
            return None

    def read(self, path: str, max_bytes: int) -> str:
        return read_text(path, max_bytes)


_SIDE: contextvars.ContextVar[FileSide] = contextvars.ContextVar("ruleanalyzer_side", default=FileSide())


def current_side() -> FileSide:
    """The side companion files are read from (see :class:`FileSide`)."""
    return _SIDE.get()


@contextlib.contextmanager
def reading_side(side: FileSide):
    """Companion files read from ``side`` inside the ``with`` block."""
    token = _SIDE.set(side)
    try:
        yield side
    finally:
        _SIDE.reset(token)


#: The path that means standard input, and the name it is reported as.
STDIN, STDIN_NAME = "-", "<stdin>"
_stdin_cache: dict[str, bytes] = {}


def input_name(path: str | os.PathLike) -> str:
    """How ``path`` is named in reports: ``<stdin>`` for ``-``."""
    return STDIN_NAME if str(path) == STDIN else str(path)


def forget_stdin() -> None:
    """Read standard input afresh next time (a new command in the same process)."""
    _stdin_cache.clear()


def _read_stdin(max_bytes: int) -> bytes:
    """Standard input's bytes, read once (a command may look at its input twice)."""
    import sys

    if "data" not in _stdin_cache:
        if sys.stdin is None or sys.stdin.isatty():
            raise RuleAnalyzerError("- reads the rules from standard input, but nothing is piped in",
                                    Location(STDIN_NAME),
                                    hint="iptables-save | ruleanalyzer audit -   (or name the file)")
        stream = getattr(sys.stdin, "buffer", None)
        data = stream.read(max_bytes + 1) if stream is not None else sys.stdin.read(max_bytes + 1).encode()
        _stdin_cache["data"] = data
    data = _stdin_cache["data"]
    if len(data) > max_bytes:
        raise _too_big(STDIN_NAME, f"more than {max_bytes} bytes", max_bytes)
    return data


def read_text(path: str | os.PathLike, max_bytes: int = DEFAULT_MAX_BYTES, *,
              root: str | os.PathLike | None = None) -> str:
    """The text of ``path`` (``-``: standard input): UTF-8 (BOM tolerated),
    else a located error.

    Only a regular file is read (a device, FIFO or socket is refused before
    a byte is read), never through a symlink leading out of ``root`` (see
    :func:`refuse_escape`), and at most ``max_bytes`` + 1 bytes whatever the
    file's size claims (``/proc`` files and devices say 0). Binary input is
    refused with the offset of its first NUL byte rather than parsed as
    garbage."""
    name = str(path)
    if name == STDIN:
        text = decode_text(_read_stdin(max_bytes), STDIN_NAME)
        _keep_text(STDIN_NAME, text)
        return text
    refuse_escape(name, root)
    try:
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise RuleAnalyzerError(f"cannot read file: {exc.strerror or exc}", Location(name)) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise RuleAnalyzerError("cannot read file: Is a directory", Location(name))
        if not stat.S_ISREG(info.st_mode):
            raise RuleAnalyzerError("not a regular file (a device, FIFO or socket); not read", Location(name),
                                    hint="only regular files are analysed")
        if info.st_size > max_bytes:
            raise _too_big(name, f"{info.st_size} bytes", max_bytes)
        chunks, total = [], 0
        while total <= max_bytes:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > max_bytes:  # it grew, or its size lied
            raise _too_big(name, f"more than {max_bytes} bytes", max_bytes)
        data = b"".join(chunks)
    except OSError as exc:
        raise RuleAnalyzerError(f"cannot read file: {exc.strerror or exc}", Location(name)) from None
    finally:
        os.close(fd)
    text = decode_text(data, name)
    _keep_text(name, text)
    return text


def decode_text(data: bytes, name: str) -> str:
    """``data`` as UTF-8 text (BOM tolerated); a located error for binary
    data or another encoding."""
    nul = data.find(b"\0")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        col = nul - (data.rfind(b"\n", 0, nul) + 1) + 1
        raise RuleAnalyzerError("binary data (a NUL byte), not a rule file", Location(name, line, col))
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise RuleAnalyzerError(f"not UTF-8 text (byte 0x{data[exc.start]:02x})",
                                Location(name, line, col)) from None


def _too_big(name: str, size: str, max_bytes: int) -> RuleAnalyzerError:
    return RuleAnalyzerError(f"file is {size}, over the limit of {max_bytes} bytes", Location(name),
                             hint="raise the limit with --max-bytes if this really is a rule file")


#: Names a snapshot archive may have (snapshot.ARCHIVE_SUFFIXES, checked there too).
_ARCHIVE_HINTS = (".tar", ".gz", ".tgz", ".xz", ".txz", ".bz2", ".tbz2")


def _plain_file(path) -> bool:
    """A regular file that cannot be a snapshot archive."""
    return (isinstance(path, (str, os.PathLike)) and not str(path).lower().endswith(_ARCHIVE_HINTS)
            and os.path.isfile(path))


def load(*paths: str | os.PathLike, dialect: str | None = None,
         max_bytes: int = DEFAULT_MAX_BYTES, firewalld_version: str | None = None,
         table: str | None = None) -> Ruleset:
    """Parse rule files that together describe one firewall into one ruleset.
    A path may be a host snapshot, a directory or an archive (docs/collect.md).

    >>> rs = load("fixtures/rulesets/webserver.rules")       # doctest: +SKIP
    >>> rs.rule_count                                         # doctest: +SKIP
    12

    Each file's dialect is sniffed unless ``dialect`` names it;
    ``firewalld_version`` picks the layout a firewalld configuration
    directory compiles to (1.x or 2.x; default: the version a snapshot
    recorded, else 1.3.3); ``table`` names the table of ``iptables -S``
    output and of script commands without ``-t``. ``-`` reads standard
    input (reported as ``<stdin>``). Raises
    :class:`RuleAnalyzerError` (located) on bad input.
    """
    if not paths:
        raise RuleAnalyzerError("no rule files given")
    parsed = []
    snapshots = []
    for path in paths:
        if str(path) == STDIN or _plain_file(path):
            # the common case, without importing the snapshot reader; its
            # includes count against max_bytes too
            with reading_side(FileSide(max_bytes)):
                parsed.append(_parse_file(path, dialect, max_bytes, table, firewalld_version))
            continue
        from .snapshot import Snapshot, is_snapshot, load_snapshot, snapshot_ruleset

        if isinstance(path, Snapshot):  # already read (a fleet audit's worker gets these)
            snapshots.append(snapshot_ruleset(path, apply=False))
            continue
        if is_snapshot(path):
            # A host snapshot (directory or archive): its rules, and the
            # host context applied once all files are read.
            snapshots.append(load_snapshot(path, max_bytes, apply=False))
            continue
        if os.path.isdir(path):
            parsed.append(load_directory(path, dialect, max_bytes, firewalld_version))
            continue
        with reading_side(FileSide(max_bytes)):
            parsed.append(_parse_file(path, dialect, max_bytes, table, firewalld_version))
    # A dialect whose files only make sense together (ufw's user.rules +
    # before.rules + ufw.conf) rebuilds them as one host: ``combine(rulesets)``.
    for name in dict.fromkeys(r.meta.get("dialect") for r in parsed):
        combine = getattr(parsers.dialect_module(name), "combine", None) if name else None
        if combine is not None:
            parsed = combine(parsed)
    ruleset = Ruleset()
    for part in snapshots + parsed:
        ruleset.merge(part)
    if snapshots:
        from .hostrules import apply_host

        if len(snapshots) > 1:
            raise RuleAnalyzerError("more than one host snapshot given for one firewall",
                                    hint="audit a directory of snapshots to compare hosts")
        apply_host(ruleset, ruleset.host)
    if any(t.name == "firewalld" and t.family == "inet" and t.dialect != "firewalld" for t in ruleset.tables):
        from .parsers.firewalld_names import name_back

        name_back(ruleset)  # an nft dump firewalld generated: chains back to zones
    return ruleset


def _parse_file(path, dialect: str | None, max_bytes: int, table: str | None,
                firewalld_version: str | None = None) -> Ruleset:
    """One rule file (or standard input) read and parsed; JSON inputs get
    the line of each rule's JSON element; a firewalld file given alone (a
    zone, list-all output) compiles to ``firewalld_version``'s layout."""
    name = input_name(path)
    text = read_text(path, max_bytes)
    refuse_empty(text, name, dialect)
    if firewalld_version is None:
        part = parsers.parse(text, name, dialect, table=table)
    else:
        from .parsers.firewalld import version_for_files

        with version_for_files(firewalld_version):
            part = parsers.parse(text, name, dialect, table=table)
    add_lines(part, text, name)
    return part


def load_directory(path: str | os.PathLike, dialect: str | None = None,
                   max_bytes: int = DEFAULT_MAX_BYTES,
                   firewalld_version: str | None = None) -> Ruleset:
    """A directory that is one firewall's configuration: firewalld's
    ``/etc/firewalld`` (or a snapshot holding it; ``firewalld_version``
    picks the 1.x or 2.x layout), or a Terraform module directory (its
    ``.tf`` files as one configuration)."""
    from .parsers import firewalld, terraform

    if dialect in (None, "terraform") and terraform.is_config_dir(path):
        ruleset = terraform.load_directory(path, max_bytes)
        ruleset.meta.setdefault("dialect", "terraform")
        return ruleset
    if dialect in (None, "firewalld") and firewalld.is_config_dir(path):
        ruleset = firewalld.load_directory(path, version=firewalld_version)
        ruleset.meta.setdefault("dialect", "firewalld")
        return ruleset
    raise RuleAnalyzerError("a directory is not a rule file", Location(str(path)),
                            hint="name the files in it, or give a firewalld configuration directory "
                                 "(firewalld.conf, zones/, policies/) or a directory of .tf files")


def loads(text: str, dialect: str | None = None, name: str = "<string>") -> Ruleset:
    """Parse rules held in a string (see :func:`load`)."""
    ruleset = parsers.parse(text, name, dialect)
    # a dialect that reads files together finishes a lone one too (a firewall-cmd policies listing)
    combine = getattr(parsers.dialect_module(ruleset.meta["dialect"]), "combine", None) \
        if ruleset.meta.get("dialect") in parsers.DIALECTS else None
    return combine([ruleset])[0] if combine is not None else ruleset
