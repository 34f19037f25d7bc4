"""Writing reports so that a failed run leaves nothing half-written."""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from typing import Iterator, TextIO


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
    buffer = io.StringIO()
    yield buffer
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".ruleanalyzer-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(buffer.getvalue())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
