"""Finder's metadata files as DAV resources, kept by the mount's side-file store (see
:mod:`pikdav.vfs.sidefiles`), never sent to PikPak."""

from __future__ import annotations

import hashlib
import io
import time

from wsgidav.dav_error import HTTP_FORBIDDEN, HTTP_REQUEST_ENTITY_TOO_LARGE, DAVError
from wsgidav.dav_provider import DAVNonCollection

from pikdav.vfs.names import is_finder_metadata
from pikdav.vfs.sidefiles import SideFiles

from .errors import answering


class _Buffer(io.BytesIO):
    """WsgiDAV closes the body before calling end_write; keep the bytes until then."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def write(self, data) -> int:
        if self.tell() + len(data) > self.limit:
            raise DAVError(HTTP_REQUEST_ENTITY_TOO_LARGE, "Finder metadata file too large")
        return super().write(data)

    def close(self) -> None:
        pass


class SideFile(DAVNonCollection):
    def __init__(self, path: str, environ: dict, store: SideFiles) -> None:
        super().__init__(path, environ)
        self.store = store
        self.data = store.get(path)
        self._buffer: _Buffer | None = None

    def _content(self) -> bytes:
        return self.data.content if self.data else b""

    def get_content_length(self) -> int:
        return len(self._content())

    def get_content_type(self) -> str:
        return "application/octet-stream"

    def get_etag(self) -> str:
        return hashlib.md5(self._content()).hexdigest()  # noqa: S324 - an ETag, not security

    def get_last_modified(self) -> float:
        return self.data.modified if self.data else time.time()

    def get_creation_date(self) -> float:
        return self.get_last_modified()

    def support_etag(self) -> bool:
        return True

    def support_ranges(self) -> bool:
        return True

    def get_content(self) -> io.BytesIO:
        return io.BytesIO(self._content())

    def begin_write(self, *, content_type: str | None = None) -> _Buffer:
        self._buffer = _Buffer(self.store.max_file)
        return self._buffer

    def end_write(self, *, with_errors: bool) -> None:
        if self._buffer is not None and not with_errors:
            with answering(f"keeping {self.path}"):
                self.store.put(self.path, self._buffer.getvalue())
            self.data = self.store.get(self.path)

    def handle_delete(self) -> bool:
        with answering(f"deleting {self.path}"):
            self.store.delete(self.path)
        return True

    def handle_move(self, dest_path: str) -> bool:
        return self._relocate(dest_path, keep_source=False)

    def handle_copy(self, dest_path: str, *, depth_infinity: bool) -> bool:
        return self._relocate(dest_path, keep_source=True)

    def _relocate(self, dest_path: str, *, keep_source: bool) -> bool:
        if not is_finder_metadata(dest_path.rstrip("/").rpartition("/")[2]):
            raise DAVError(HTTP_FORBIDDEN, "Finder metadata stays Finder metadata")
        with answering(f"moving {self.path}"):
            self.store.move(self.path, dest_path.rstrip("/"), keep_source=keep_source)
        return True

    def set_last_modified(self, dest_path: str, time_stamp, *, dry_run: bool) -> bool:
        return True
