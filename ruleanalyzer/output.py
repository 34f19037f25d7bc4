"""Writing reports so that a failed run leaves nothing half-written.

``-o FILE`` is checked before any analysis (:func:`check_target`): a missing
or unwritable directory, or a target that is a directory, a symbolic link or
a device, is bad input (exit 2) with a clear message. The report is written
to a temporary file beside the target and moved into place only when the
whole run succeeded; an existing file keeps its permissions.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import sys
import tempfile
from typing import Iterator, TextIO

from .errors import RuleAnalyzerError
from .model import Location


def check_target(path: str | None) -> None:
    """Refuse an output path the report could not (or should not) replace."""
    if not path or path == "-":
        return
    where = Location(path)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise RuleAnalyzerError(f"cannot write the report: {exc.strerror}", where) from None
    if info is not None:
        if stat.S_ISLNK(info.st_mode):
            raise RuleAnalyzerError("cannot write the report: the output path is a symbolic link",
                                    where, hint="name the file the link points to, or another file")
        if stat.S_ISDIR(info.st_mode):
            raise RuleAnalyzerError("cannot write the report: the output path is a directory", where,
                                    hint="name a file, e.g. -o report.sarif")
        if not stat.S_ISREG(info.st_mode):
            raise RuleAnalyzerError("cannot write the report: the output path is not a regular file "
                                    "(a device, FIFO or socket)", where,
                                    hint="leave out -o to write to standard output")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise RuleAnalyzerError(f"cannot write the report: directory {directory} does not exist", where)
    if not os.access(directory, os.W_OK | os.X_OK):
        raise RuleAnalyzerError(f"cannot write the report: directory {directory} is not writable",
                                where)


@contextlib.contextmanager
def atomic_output(path: str | None) -> Iterator[TextIO]:
    """Yield a text stream for the report.

    With ``path``, the report is buffered and moved into place only when the
    block finishes without an exception; otherwise the file is left as it was.
    Without a path, stdout.
    """
    if not path or path == "-":
        yield sys.stdout
        return
    check_target(path)
    buffer = io.StringIO()
    yield buffer
    check_target(path)  # still a file we may replace, after the analysis
    directory = os.path.dirname(os.path.abspath(path))
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    try:
        fd, tmp = tempfile.mkstemp(prefix=".ruleanalyzer-", dir=directory)
    except OSError as exc:
        raise RuleAnalyzerError(f"cannot write the report: {exc.strerror}", Location(path)) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(buffer.getvalue())
            os.fchmod(handle.fileno(), mode)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):  # a full disk, a vanished directory
            raise RuleAnalyzerError(f"cannot write the report: {exc.strerror or exc}",
                                    Location(path)) from None
        raise
