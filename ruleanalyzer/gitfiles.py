"""Rule files as they were at a git revision, read safely for CI.

Git is run with an argument list (never a shell), revisions that look like
options are refused, and paths are resolved relative to the working
directory (``REV:./path``), so ``ruleanalyzer diff --git origin/main
rules.v4`` works from any subdirectory of the repository.
"""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
from pathlib import Path

from .errors import RuleAnalyzerError
from .loader import DEFAULT_MAX_BYTES, FileSide, reading_side
from .model import Location

#: Seconds a git command may take before the diff gives up.
GIT_TIMEOUT = 60


def _git(args: list[str], cwd: str | None = None, nothing: int | None = None) -> bytes:
    """Git's output; ``nothing``: an exit status meaning "no output" (``git grep``: 1)."""
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=GIT_TIMEOUT,
                              check=False)
    except FileNotFoundError:
        raise RuleAnalyzerError("git is not installed (needed for --git)") from None
    except subprocess.TimeoutExpired:
        raise RuleAnalyzerError(f"git {' '.join(args[:2])} took longer than {GIT_TIMEOUT} s") from None
    if done.returncode == nothing:
        return b""
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RuleAnalyzerError(f"git {args[0]} failed: {message[-1] if message else done.returncode}")
    return done.stdout


def check_revision(rev: str) -> str:
    """``rev`` if it can only be read as a revision (not an option, no NUL)."""
    if not rev or rev.startswith("-") or "\0" in rev or any(c.isspace() for c in rev):
        raise RuleAnalyzerError(f"not a git revision: {rev!r}")
    return rev


def split_range(spec: str) -> tuple[str, str | None]:
    """``A..B`` → (A, B); ``A`` → (A, None) meaning "A against the working tree"."""
    if ".." in spec:
        a, _, b = spec.partition("..")
        if b.startswith("."):  # A...B (merge base) is not what a diff of files means here
            raise RuleAnalyzerError(f"use A..B, not {spec!r}")
        return check_revision(a or "HEAD"), check_revision(b or "HEAD")
    return check_revision(spec), None


#: Git's empty tree: the old side of a repository's first commit.
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
_PARENT = re.compile(r"(.+?)(?:~1?|\^1?)\Z")


def resolve(rev: str) -> tuple[str, str | None]:
    """``(revision to read, note)`` for ``rev``: a bad or unfetched
    revision, or no repository, is an error — never an empty old side; the
    parent of a repository's first commit is the empty tree, said in the
    note."""
    rev = check_revision(rev)
    try:
        _git(["rev-parse", "--is-inside-work-tree"])
    except RuleAnalyzerError:
        raise RuleAnalyzerError("--git needs a git repository: this directory is not in one",
                                hint="run from inside the repository, or compare two files: "
                                     "diff OLD NEW") from None
    if _verifies(rev):
        return rev, None
    parent = _PARENT.match(rev)
    if parent and _verifies(parent.group(1)):
        line = _git(["rev-list", "--parents", "-n", "1", parent.group(1)]).split()
        if len(line) == 1:  # no parent: the first commit
            return EMPTY_TREE, (f"{parent.group(1)} is the repository's first commit: its files are "
                                "compared with an empty repository")
    raise RuleAnalyzerError(f"unknown git revision {rev!r}",
                            hint="a typo, or a revision this clone has not fetched (in CI: "
                                 f"git fetch origin {rev}, with enough depth)")


def _verifies(rev: str) -> bool:
    try:
        _git(["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"])
        return True
    except RuleAnalyzerError:
        return False


def exists_at(rev: str, path: str) -> bool:
    """Does ``path`` (relative to the working directory) exist at ``rev``?"""
    try:
        _git(["cat-file", "-e", f"{check_revision(rev)}:./{_relative(path)}"])
        return True
    except RuleAnalyzerError:
        return False


def read_at(rev: str, path: str, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """The text of ``path`` at ``rev`` (``git show REV:./path``).

    Raises a located RuleAnalyzerError when it does not exist there, is too
    large, binary or not UTF-8."""
    rev = check_revision(rev)
    name = f"{rev}:{path}"
    data = _blob_at(rev, path, max_bytes)
    if b"\0" in data:
        raise RuleAnalyzerError("binary data (a NUL byte), not a rule file", Location(name))
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RuleAnalyzerError(f"not UTF-8 text (byte 0x{data[exc.start]:02x})", Location(name)) from None


def _blob_at(rev: str, path: str, max_bytes: int) -> bytes:
    """The bytes of regular file ``path`` at ``rev`` (a link, a directory,
    a file over ``max_bytes``: a located error)."""
    spec = f"{rev}:./{_relative(path)}"
    name = f"{rev}:{path}"
    mode = _mode_at(rev, path)
    if mode is None:
        raise RuleAnalyzerError(f"no file {path} at {rev}", Location(name))
    if mode == "120000":
        raise RuleAnalyzerError("a symlink at that revision; not followed", Location(name),
                                hint="only files of the tree are read")
    if not mode.startswith("100"):
        raise RuleAnalyzerError("not a file at that revision (a directory or submodule)", Location(name))
    size = _git(["cat-file", "-s", spec]).strip()
    if size and int(size) > max_bytes:
        raise RuleAnalyzerError(f"file is {int(size)} bytes, over the limit of {max_bytes} bytes",
                                Location(name))
    return _git(["show", "--no-textconv", spec])


def changed_files(rev: str, rev2: str | None = None) -> list[str]:
    """Files that differ between ``rev`` and ``rev2`` (or the working tree),
    relative to the working directory; deleted files included."""
    args = ["diff", "--name-only", "-z", "--relative", check_revision(rev)]
    if rev2:
        args.append(check_revision(rev2))
    # -z: names as they are (git quotes "pare-feu-\303\251.rules" otherwise)
    out = _git(args + ["--"]).decode("utf-8", "surrogateescape")
    return [name for name in out.split("\0") if name]


#: Files searched for includes of a changed file, and bytes read of each.
MAX_INCLUDER_FILES = 2000
MAX_INCLUDER_BYTES = 1024 * 1024
_INCLUDE = re.compile(r'^\s*include\s+"([^"\n]+)"', re.M)


def with_includers(paths: list[str]) -> list[str]:
    """``paths`` (changed files) and the tracked nft files of the working
    tree that include one of them (directly; globs too): a change inside an
    included file changes the ruleset of the file including it, which git
    does not list as changed. At most :data:`MAX_INCLUDER_FILES` files are
    looked at, :data:`MAX_INCLUDER_BYTES` of each."""
    from .loader import read_text

    changed = {os.path.normpath(os.path.abspath(p)) for p in paths}
    out = list(paths)
    listed = _git(["ls-files", "-z", "--", "."]).decode("utf-8", "surrogateescape").split("\0")
    for name in [n for n in listed if n][:MAX_INCLUDER_FILES]:
        full = os.path.normpath(os.path.abspath(name))
        if full in changed or not os.path.isfile(name):
            continue
        try:
            head = read_text(name, MAX_INCLUDER_BYTES)
        except RuleAnalyzerError:
            continue
        if "include" not in head:
            continue
        base = os.path.dirname(full)
        for pattern in _INCLUDE.findall(head):
            target = os.path.normpath(os.path.join(base, pattern))
            if any(fnmatch.fnmatchcase(c, target) for c in changed):
                out.append(name)
                break
    return out


def _mode_at(rev: str, path: str) -> str | None:
    """The git mode of ``path`` at ``rev`` (``100644``, ``120000`` a link,
    ``040000`` a tree …), None when it is not there."""
    out = _git(["ls-tree", "-z", check_revision(rev), "--", f"./{_relative(path)}"])
    entry = out.split(b"\0", 1)[0]
    return entry.split(b" ", 1)[0].decode() if entry else None


class RevisionSide(FileSide):
    """Companion files (an nft ``include``) read at git revision ``rev``
    (see :class:`ruleanalyzer.loader.FileSide`): the files a rule file
    includes at that revision, never today's."""

    def __init__(self, rev: str, max_bytes: int = DEFAULT_MAX_BYTES):
        super().__init__(max_bytes)
        self.rev = check_revision(rev)

    def path_of(self, name: str) -> str:
        prefix = f"{self.rev}:"
        return name[len(prefix):] if name.startswith(prefix) else name

    def name_of(self, path: str) -> str:
        return f"{self.rev}:{os.path.relpath(path)}"

    def is_file(self, path: str) -> bool:
        mode = _mode_at(self.rev, path)
        return mode is not None and (mode.startswith("100") or mode == "120000")

    def is_dir(self, path: str) -> bool:
        return _relative(str(path)) == "." or _mode_at(self.rev, str(path)) == "040000"

    def files(self, directory, pattern: str) -> list[Path]:
        # links are listed: reading one is refused, located (as is_file)
        rel = _relative(str(directory))
        out = _git(["ls-tree", "-z", self.rev, "--", "./" if rel == "." else f"./{rel}/"])
        names = []
        for entry in out.decode("utf-8", "surrogateescape").split("\0"):
            meta, _, name = entry.partition("\t")
            mode = meta.split(" ", 1)[0]
            base = name.rsplit("/", 1)[-1]
            if (mode.startswith("100") or mode == "120000") and fnmatch.fnmatchcase(base, pattern):
                names.append(Path(directory) / base)
        return sorted(names)

    def real(self, path) -> Path:
        # no link of the revision is followed, so the path's own spelling is its place
        return Path(os.path.normpath(os.path.abspath(path)))

    def head(self, path, limit: int) -> str | None:
        try:
            return _blob_at(self.rev, str(path), self.max_bytes)[:limit].decode("utf-8", "replace")
        except RuleAnalyzerError:
            return None

    def glob(self, pattern: str) -> list[str]:
        base = pattern
        while any(c in base for c in "*?["):
            base = os.path.dirname(base)
        out = _git(["ls-tree", "-r", "--name-only", "-z", self.rev, "--", f"./{_relative(base)}"])
        depth = pattern.count(os.sep)
        names = (os.path.abspath(n) for n in out.decode("utf-8", "surrogateescape").split("\0") if n)
        return sorted(n for n in names if n.count(os.sep) == depth and fnmatch.fnmatchcase(n, pattern))

    def read(self, path: str, max_bytes: int) -> str:
        return read_at(self.rev, path, max_bytes)


def _relative(path: str) -> str:
    rel = os.path.relpath(path)
    if rel.startswith(".."):
        raise RuleAnalyzerError(f"{path} lies outside the working directory", Location(path))
    return rel.replace(os.sep, "/")


def side_name(spec: str | None, rev: str | None, paths: list[str], missing: str) -> str:
    """How one side of a --git diff is named: ``REV:files``, saying when
    the files are absent there (``missing``: added or deleted in the change)."""
    name = f"{spec or 'working tree'}:{','.join(paths)}"
    absent = [p for p in paths if not (os.path.exists(p) if rev is None else exists_at(rev, p))]
    if rev == EMPTY_TREE:
        return f"{name} (empty: before the first commit)"
    if absent and len(absent) == len(paths):
        return f"{name} (absent: {missing} in this change)"
    if absent:
        return f"{name} ({', '.join(absent)} {missing} in this change)"
    return name


def load_at(rev: str | None, paths: list[str], dialect: str | None = None,
            max_bytes: int = DEFAULT_MAX_BYTES, table: str | None = None):
    """The files ``paths`` (one firewall) as they were at ``rev`` — or in the
    working tree when ``rev`` is None — as one Ruleset. A file missing on
    that side contributes nothing (a firewall without those rules).
    ``table``: the table of ``iptables -S`` output (see :func:`load`)."""
    from . import parsers
    from .loader import load
    from .model import Ruleset

    if rev is None:
        present = [p for p in paths if os.path.exists(p)]
        return load(*present, dialect=dialect, max_bytes=max_bytes, table=table) if present else Ruleset()
    ruleset = Ruleset()
    with reading_side(RevisionSide(rev, max_bytes)):  # its includes at that revision too
        for path in paths:
            if not exists_at(rev, path):
                continue
            ruleset.merge(parsers.parse(read_at(rev, path, max_bytes), f"{rev}:{path}", dialect,
                                        table=table))
    return ruleset


# ---------------------------------------------------------------------------
# Configurations that are a directory: a Terraform module, /etc/firewalld
# ---------------------------------------------------------------------------

TERRAFORM, FIREWALLD = "terraform", "firewalld"
#: Lines of a ``.tf`` file calling a local module (``source = "./…"``), for ``git grep``.
_MODULE_CALL = r'^[[:space:]]*source[[:space:]]*=[[:space:]]*"\.\.?/'


class _WorkingTree(FileSide):
    """The working tree, its files named relative to the working directory
    (a module read through its caller: ``modules/web/rules.tf``, as the
    revision's side names it ``REV:modules/web/rules.tf``)."""

    def name_of(self, path: str) -> str:
        rel = os.path.relpath(path)
        return path if rel.startswith(os.pardir) else rel


def _side(rev: str | None, max_bytes: int = DEFAULT_MAX_BYTES) -> FileSide:
    return _WorkingTree(max_bytes) if rev is None else RevisionSide(rev, max_bytes)


def _norm(path: str) -> str:
    return os.path.normpath(path) if path else os.curdir


def _is_terraform_file(path: str) -> bool:
    """A file Terraform reads with its module directory."""
    base = os.path.basename(path)
    return base.endswith(".tf") or base == "terraform.tfvars" or base.endswith(".auto.tfvars")


def _is_terraform_dir(directory: str, side: FileSide) -> bool:
    return side.is_dir(directory) and bool(side.files(directory, "*.tf"))


def _is_firewalld_dir(directory: str, side: FileSide) -> bool:
    from .parsers.firewalld import MARKERS

    return side.is_dir(directory) and any(
        side.is_file(os.path.join(directory, m)) or side.is_dir(os.path.join(directory, m)) for m in MARKERS)


def _module_callers(rev: str | None) -> dict[str, set[str]]:
    """Local module calls on one side: module directory → the directories
    calling it (``source = "./…"``/``"../…"`` in their ``.tf`` files), paths
    relative to the working directory; calls leaving it are not followed."""
    from .parsers.terraform import _MODULE_SOURCE

    args = ["grep", "-z", "-I", "-E", "-e", _MODULE_CALL]
    args += [rev] if rev is not None else ["--untracked"]
    out = _git([*args, "--", "*.tf"], nothing=1).decode("utf-8", "surrogateescape")
    prefix = f"{rev}:" if rev is not None else ""
    callers: dict[str, set[str]] = {}
    for line in out.split("\n"):
        name, _, text = line.partition("\0")
        m = _MODULE_SOURCE.search(text)
        if not m or not name.startswith(prefix):
            continue
        caller = _norm(os.path.dirname(name[len(prefix):]))
        target = _norm(os.path.join(caller, m.group(1)))
        if target != caller and not target.startswith(os.pardir):
            callers.setdefault(target, set()).add(caller)
    return callers


def _terraform_roots(directory: str, side: FileSide, callers: dict[str, set[str]]) -> list[str]:
    """The root modules ``directory`` belongs to on one side: itself, or the
    configurations calling it (through other modules too) that no other
    one calls — as ``audit`` reads a tree (:func:`terraform.root_modules`)."""
    from .parsers.terraform import is_one_configuration

    roots, seen, todo = [], {directory}, [directory]
    with reading_side(side):
        while todo:
            here = todo.pop()
            up = [c for c in sorted(callers.get(here, ())) if is_one_configuration(c)]
            if not up:
                roots.append(here)
            todo += [c for c in up if c not in seen]
            seen.update(up)
    return roots or [directory]  # a cycle of calls: the module itself


def _firewalld_dir_of(path: str, sides: list[FileSide]) -> str | None:
    """The firewalld configuration directory ``path`` is a file of
    (``firewalld.conf``, ``direct.xml``, ``zones/public.xml`` …) on one of
    ``sides``, or None. An XML file must read as firewalld's."""
    from .parsers.firewalld import KINDS, sniff

    parent, base = os.path.split(path)
    if base in ("firewalld.conf", "direct.xml"):
        directory = parent
    elif base.endswith(".xml") and os.path.basename(parent) in KINDS:
        directory = os.path.dirname(parent)
    else:
        return None
    directory = _norm(directory)
    for side in sides:
        if not _is_firewalld_dir(directory, side):
            continue
        if base == "firewalld.conf":
            return directory
        head = side.head(path, 4096) if side.is_file(path) else None
        if head is not None and sniff(head, path) >= 50:
            return directory
    return None


def config_groups(paths: list[str], revs: list[str | None], dialect: str | None = None,
                  named: bool = False) -> list[tuple[str | None, str | list[str]]]:
    """``paths`` (changed or named files) as the configurations to compare:
    ``(TERRAFORM, module directory)`` for a file of a Terraform module (the
    root modules calling it, when others do), ``(FIREWALLD, directory)``
    for a file of a firewalld configuration directory, and ``(None,
    [files])`` for the rest — each file alone, or together when ``named``
    (FILES given: one firewall). A directory counts when it is one on
    either side (``revs``: the revisions compared, None the working tree),
    so an added or deleted directory compares with an empty firewall. A
    named directory is read as it is."""
    sides = [(rev, _side(rev)) for rev in revs]
    calls: dict = {}  # each side's module calls (by revision), each module's roots (by directory)
    groups: dict[tuple, None] = {}
    files: list[str] = []
    for path in paths:
        rel = _norm(path.rstrip("/") or "/")
        if named and any(side.is_dir(rel) for _, side in sides):  # git lists changed files only
            if dialect in (None, TERRAFORM) and any(_is_terraform_dir(rel, s) for _, s in sides):
                groups[(TERRAFORM, rel)] = None
            elif dialect in (None, FIREWALLD) and any(_is_firewalld_dir(rel, s) for _, s in sides):
                groups[(FIREWALLD, rel)] = None
            else:
                raise RuleAnalyzerError("a directory is not a rule file", Location(path),
                                        hint="name the files in it, or a firewalld configuration directory "
                                             "(firewalld.conf, zones/, policies/) or a directory of .tf files")
            continue
        if dialect in (None, TERRAFORM) and _is_terraform_file(rel):
            directory = _norm(os.path.dirname(rel))
            if directory not in calls:  # many files of one module change together
                calls[directory] = _module_roots(directory, sides, calls)
            roots = calls[directory]
            if roots:
                groups.update(((TERRAFORM, r), None) for r in roots)
                continue
        if dialect in (None, FIREWALLD):
            directory = _firewalld_dir_of(rel, [s for _, s in sides])
            if directory is not None:
                groups[(FIREWALLD, directory)] = None
                continue
        files.append(path)
    out: list[tuple[str | None, str | list[str]]] = list(groups)
    if files:
        out += [(None, files)] if named else [(None, [f]) for f in files]
    return out


def _module_roots(directory: str, sides: list[tuple[str | None, FileSide]], calls: dict) -> list[str]:
    """The root modules of module ``directory`` on each side where it is
    one configuration (empty: a folder of unrelated ``.tf`` files);
    ``calls``: each side's :func:`_module_callers`, filled on first use."""
    from .parsers.terraform import is_one_configuration

    roots: dict[str, None] = {}
    for rev, side in sides:
        with reading_side(side):
            if not (_is_terraform_dir(directory, side) and is_one_configuration(directory)):
                continue
        key = ("calls", rev)
        if key not in calls:
            calls[key] = _module_callers(rev)
        roots.update(dict.fromkeys(_terraform_roots(directory, side, calls[key])))
    return list(roots)


def load_group(rev: str | None, kind: str | None, group, dialect: str | None = None,
               max_bytes: int = DEFAULT_MAX_BYTES, table: str | None = None):
    """One group of :func:`config_groups` at ``rev`` (None: the working tree)."""
    if kind is None:
        return load_at(rev, group, dialect, max_bytes, table)
    return load_config_at(rev, kind, group, max_bytes)


def is_cloud(*rulesets) -> bool:
    """Does one of ``rulesets`` hold cloud firewalls (security groups, ACLs,
    NSGs: separate firewalls, compared one by one)?"""
    from .targets import CLOUD_DIALECTS

    return any(t.dialect in CLOUD_DIALECTS for rs in rulesets for t in rs.tables)


def load_config_at(rev: str | None, kind: str, directory: str,
                   max_bytes: int = DEFAULT_MAX_BYTES) -> "Ruleset":
    """The configuration directory ``directory`` (a Terraform module or
    firewalld's) as it was at ``rev`` — or is in the working tree when
    ``rev`` is None — as one Ruleset, read wholly from that side; local
    modules are followed inside the working directory. A directory absent
    on that side is an empty firewall."""
    from .model import Ruleset
    from .parsers import firewalld, terraform

    side = _side(rev, max_bytes)
    if kind == TERRAFORM:
        if not _is_terraform_dir(directory, side):
            return Ruleset()
        with reading_side(side), terraform.given_trees([os.curdir]):
            ruleset = terraform.load_directory(directory, max_bytes)
    else:
        if not _is_firewalld_dir(directory, side):
            return Ruleset()
        ruleset = firewalld.load_directory(directory) if rev is None else \
            _firewalld_at(rev, directory, max_bytes)
    ruleset.meta.setdefault("dialect", kind)
    return ruleset


def _firewalld_at(rev: str, directory: str, max_bytes: int) -> "Ruleset":
    """firewalld's configuration directory at ``rev``: the files its reader
    reads (firewalld.conf, direct.xml, ``<kind>/*.xml``) copied from the
    revision into a private temporary directory — links refused, within the
    reader's bounds — and read there, named ``REV:directory/…``."""
    import tempfile

    from .parsers import firewalld

    rel = _relative(directory)
    out = _git(["ls-tree", "-r", "-l", "-z", rev, "--", "./" if rel == "." else f"./{rel}/"])
    wanted, total = [], 0
    for entry in out.decode("utf-8", "surrogateescape").split("\0"):
        meta, _, name = entry.partition("\t")
        if not name:
            continue
        inner = os.path.relpath(name, directory)
        parts = inner.split(os.sep)
        if not (inner in ("firewalld.conf", "direct.xml") or (len(parts) == 2 and parts[0] in firewalld.KINDS
                                                              and parts[1].endswith(".xml"))):
            continue
        fields = meta.split()  # mode, type, object, size
        mode, size = fields[0], fields[-1]
        if mode.startswith("100") or mode == "120000":  # a link: read_at refuses it, located
            wanted.append((name, inner))
            total += int(size) if size.isdigit() else 0
    for kind in firewalld.KINDS:  # a kind folder that is a link at the revision
        if _mode_at(rev, os.path.join(directory, kind)) == "120000":
            wanted.insert(0, (os.path.join(directory, kind), kind))
    if len(wanted) > firewalld.MAX_FILES or total > firewalld.MAX_TOTAL_BYTES:
        raise RuleAnalyzerError(f"the configuration directory holds more than {firewalld.MAX_FILES} files or "
                                f"{firewalld.MAX_TOTAL_BYTES // 2**20} MiB at {rev}: refused",
                                Location(f"{rev}:{directory}"))
    with tempfile.TemporaryDirectory(prefix="ra-git-firewalld-") as tmp:
        for name, inner in wanted:
            text = read_at(rev, name, min(max_bytes, firewalld.MAX_FILE_BYTES))
            target = os.path.join(tmp, inner)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "w", encoding="utf-8") as handle:
                handle.write(text)
        if not os.path.exists(os.path.join(tmp, "firewalld.conf")) and not os.path.isdir(
                os.path.join(tmp, "zones")) and not os.path.isdir(os.path.join(tmp, "policies")) \
                and not os.path.exists(os.path.join(tmp, "direct.xml")):
            os.mkdir(os.path.join(tmp, "zones"))  # empty folders are not in git: still a configuration
        return firewalld.load_directory(tmp, shown=f"{rev}:{directory}")
