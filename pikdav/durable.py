"""Files that survive a crash: written whole or not at all, and flushed to disk before the
caller goes on (the token store's logins, the background uploads' journals and bodies).

Standard library only, so that every layer may use it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def fsync_path(path: Path) -> None:
    """Flush a file's data, or a folder's entries, to disk (Linux flushes the inode whatever
    descriptor asks, so a file already closed by someone else can be flushed by its name)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(path: Path, data: bytes, *, mode: int = 0o600, temp_prefix: str = "") -> None:
    """Replace ``path`` with ``data`` atomically (a temporary file in the same folder, flushed,
    renamed over it) and durably (the folder flushed too: a rename lasts only once the
    folder's entry does). A crash leaves the old content or the new, never half a file; the
    temporary file's name starts with ``temp_prefix`` (default ``.<name>.``)."""
    prefix = temp_prefix or f".{path.name}."
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_path(path.parent)
