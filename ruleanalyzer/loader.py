"""Reading rule files from disk into one :class:`~ruleanalyzer.model.Ruleset`."""

from __future__ import annotations

import os
from pathlib import Path

from . import parsers
from .errors import RuleAnalyzerError
from .model import Location, Ruleset

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


def read_text(path: str | os.PathLike, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """The text of ``path``: UTF-8 (BOM tolerated), else a located error.

    Binary input is refused with the offset of its first NUL byte rather than
    parsed as garbage."""
    name = str(path)
    try:
        size = os.path.getsize(path)
        if size > max_bytes:
            raise RuleAnalyzerError(
                f"file is {size} bytes, over the limit of {max_bytes} bytes", Location(name),
                hint="raise the limit with --max-bytes if this really is a rule file")
        data = Path(path).read_bytes()
    except OSError as exc:
        raise RuleAnalyzerError(f"cannot read file: {exc.strerror or exc}", Location(name)) from None
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


def load(*paths: str | os.PathLike, dialect: str | None = None,
         max_bytes: int = DEFAULT_MAX_BYTES, firewalld_version: str | None = None) -> Ruleset:
    """Parse rule files that together describe one firewall into one ruleset.
    A path may be a host snapshot, a directory or an archive (docs/collect.md).

    >>> rs = load("fixtures/rulesets/webserver.rules")       # doctest: +SKIP
    >>> rs.rule_count                                         # doctest: +SKIP
    12

    Each file's dialect is sniffed unless ``dialect`` names it;
    ``firewalld_version`` picks the layout a firewalld configuration
    directory compiles to (1.x or 2.x; default: the version a snapshot
    recorded, else 1.3.3). Raises
    :class:`RuleAnalyzerError` (located) on bad input.
    """
    if not paths:
        raise RuleAnalyzerError("no rule files given")
    from .snapshot import Snapshot, is_snapshot, load_snapshot, snapshot_ruleset

    parsed = []
    snapshots = []
    for path in paths:
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
        text = read_text(path, max_bytes)
        refuse_empty(text, str(path), dialect)
        parsed.append(parsers.parse(text, str(path), dialect))
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
    return parsers.parse(text, name, dialect)
