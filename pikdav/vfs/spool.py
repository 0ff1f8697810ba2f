"""Upload bodies on their way in: spooled to a file on local disk and hashed (GCID) in one
pass, so that PikPak can be asked for the content by its hash the moment the body is complete."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pikdav.pikpak.gcid import GcidHasher, gcid_of_file

from .errors import NoRoom, TooLarge

SPACE_MARGIN = 64 << 20  # keep this much free on the spool disk
SPOOL_PREFIX = "pikdav-put-"  # a body still arriving (a restart removes such leftovers)


@dataclass(frozen=True)
class SpoolSettings:
    directory: str | None = None  # None: the system's temporary folder
    max_size: int | None = None  # bytes; larger uploads are refused (TooLarge)


class SpoolFile:
    """A body being received: a temporary file on disk, hashed (GCID) as it arrives when its
    size is announced (``expected``; ``exact``: any other size is a cut upload)."""

    def __init__(self, settings: SpoolSettings, expected: int | None, exact: bool = False) -> None:
        self.settings = settings
        self.expected = expected
        self.exact = exact  # Content-Length: a body of any other size is a broken upload
        if settings.max_size is not None and expected is not None and expected > settings.max_size:
            raise TooLarge(f"uploads are limited to {settings.max_size} bytes")
        directory = settings.directory or tempfile.gettempdir()
        if expected is not None and shutil.disk_usage(directory).free < expected + SPACE_MARGIN:
            raise NoRoom("the gateway has no room to receive this file")
        fd, name = tempfile.mkstemp(prefix=SPOOL_PREFIX, dir=directory)
        self.path = Path(name)
        self._out = os.fdopen(fd, "wb")
        self._hasher = GcidHasher(expected) if expected is not None else None
        self.size = 0
        self.closed = False

    def write(self, data: bytes) -> int:
        self.size += len(data)
        if self.settings.max_size is not None and self.size > self.settings.max_size:
            raise TooLarge(f"uploads are limited to {self.settings.max_size} bytes")
        self._out.write(data)
        if self._hasher is not None:
            self._hasher.update(data)
        return len(data)

    def writelines(self, chunks) -> None:
        for chunk in chunks:
            self.write(chunk)

    def close(self) -> None:
        # Called when the body has arrived: a body that must survive a crash (background
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
