"""PUT bodies on their way in: spooled to a temporary file and hashed (GCID) in one pass."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from wsgidav.dav_error import (
    HTTP_INSUFFICIENT_STORAGE,
    HTTP_REQUEST_ENTITY_TOO_LARGE,
    DAVError,
)

from pikdav.pikpak.gcid import GcidHasher, gcid_of_file
from pikdav.vfs.pending import SPOOL_PREFIX

SPACE_MARGIN = 64 << 20  # keep this much free on the spool disk


@dataclass(frozen=True)
class SpoolSettings:
    directory: str | None = None  # None: the system's temporary folder
    max_size: int | None = None  # bytes; larger uploads get 413


def size_hint(environ: dict) -> int | None:
    """The announced body size: Content-Length, or Finder's X-Expected-Entity-Length when it
    sends a chunked body."""
    for key in ("CONTENT_LENGTH", "HTTP_X_EXPECTED_ENTITY_LENGTH"):
        value = environ.get(key)
        if value not in (None, ""):
            try:
                return max(0, int(value))
            except ValueError:
                continue
    return None


class SpoolFile:
    """The file-like object WsgiDAV writes a PUT body into: a temporary file on disk,
    hashed (GCID) as it arrives when the size is announced."""

    def __init__(self, settings: SpoolSettings, expected: int | None, exact: bool = False) -> None:
        self.settings = settings
        self.expected = expected
        self.exact = exact  # Content-Length: a body of any other size is a broken upload
        if settings.max_size is not None and expected is not None and expected > settings.max_size:
            raise DAVError(
                HTTP_REQUEST_ENTITY_TOO_LARGE, f"uploads are limited to {settings.max_size} bytes"
            )
        directory = settings.directory or tempfile.gettempdir()
        if expected is not None and shutil.disk_usage(directory).free < expected + SPACE_MARGIN:
            raise DAVError(
                HTTP_INSUFFICIENT_STORAGE, "the gateway has no room to receive this file"
            )
        fd, name = tempfile.mkstemp(prefix=SPOOL_PREFIX, dir=directory)
        self.path = Path(name)
        self._out = os.fdopen(fd, "wb")
        self._hasher = GcidHasher(expected) if expected is not None else None
        self.size = 0
        self.closed = False

    def write(self, data: bytes) -> int:
        self.size += len(data)
        if self.settings.max_size is not None and self.size > self.settings.max_size:
            raise DAVError(
                HTTP_REQUEST_ENTITY_TOO_LARGE,
                f"uploads are limited to {self.settings.max_size} bytes",
            )
        self._out.write(data)
        if self._hasher is not None:
            self._hasher.update(data)
        return len(data)

    def writelines(self, chunks) -> None:
        for chunk in chunks:
            self.write(chunk)

    def close(self) -> None:
        # WsgiDAV calls this before end_write: a body that must survive a crash (background
        # uploads) is made durable by whoever takes it over (PendingUploads.add).
        if not self.closed:
            self._out.close()
            self.closed = True

    @property
    def complete(self) -> bool:
        """False when the client went away before sending the Content-Length it announced
        (the server then sees an early end of the body, not an error)."""
        return not self.exact or self.size == self.expected

    def gcid(self) -> str:
        if self._hasher is not None and self.size == self.expected:
            return self._hasher.hexdigest()
        return gcid_of_file(self.path, self.size)  # chunked body: a second pass

    def discard(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)
