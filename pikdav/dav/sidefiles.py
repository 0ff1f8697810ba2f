"""Finder's metadata files (``._name`` AppleDouble files and ``.DS_Store``), kept out of PikPak.

Finder writes a ``._name`` beside every file it copies (extended attributes, tags, resource
forks) and a ``.DS_Store`` in every folder it opens, and reads them back while the window is
open. Uploading them would fill the drive with hidden clutter that every other client (the
PikPak app, phones, rclone) then shows or syncs, and cost an upload per copied file. So by
default (``finder_metadata: keep_local``) pikdav accepts them, keeps them in memory for as
long as it runs, and never sends them to PikPak; Finder behaves as on any server, and the
drive stays clean. What is lost on a restart is Finder's window layout and tags for files
copied through pikdav. ``finder_metadata: store`` uploads them like any file instead.
"""

from __future__ import annotations

import hashlib
import io
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from wsgidav.dav_error import HTTP_FORBIDDEN, HTTP_REQUEST_ENTITY_TOO_LARGE, DAVError
from wsgidav.dav_provider import DAVNonCollection

FINDER_METADATA = re.compile(r"^(\._.+|\.DS_Store)$")


def is_finder_metadata(name: str) -> bool:
    return bool(FINDER_METADATA.match(name))


@dataclass(frozen=True)
class SideFileData:
    content: bytes
    modified: float


class SideStore:
    """Bounded, thread-safe, least recently used first out."""

    def __init__(self, max_bytes: int = 64 << 20, max_file: int = 4 << 20) -> None:
        self.max_bytes = max_bytes
        self.max_file = max_file
        self._files: OrderedDict[str, SideFileData] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, path: str) -> SideFileData | None:
        with self._lock:
            found = self._files.get(path)
            if found is not None:
                self._files.move_to_end(path)
            return found

    def put(self, path: str, content: bytes) -> None:
        with self._lock:
            self._drop(path)
            self._files[path] = SideFileData(content, time.time())
            self._size += len(content)
            while self._size > self.max_bytes and self._files:
                self._drop(next(iter(self._files)))

    def delete(self, path: str) -> None:
        with self._lock:
            self._drop(path)
            for key in [k for k in self._files if k.startswith(path.rstrip("/") + "/")]:
                self._drop(key)

    def move(self, src: str, dest: str, *, keep_source: bool = False) -> None:
        with self._lock:
            prefix = src.rstrip("/") + "/"
            for key in [k for k in self._files if k == src or k.startswith(prefix)]:
                data = self._files[key]
                new = dest + key[len(src) :]
                if not keep_source:
                    self._drop(key)
                self._drop(new)
                self._files[new] = data
                self._size += len(data.content)

    def _drop(self, path: str) -> None:
        old = self._files.pop(path, None)
        if old is not None:
            self._size -= len(old.content)


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
    def __init__(self, path: str, environ: dict, store: SideStore) -> None:
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
            self.store.put(self.path, self._buffer.getvalue())
            self.data = self.store.get(self.path)

    def handle_delete(self) -> bool:
        self.store.delete(self.path)
        return True

    def handle_move(self, dest_path: str) -> bool:
        return self._relocate(dest_path, keep_source=False)

    def handle_copy(self, dest_path: str, *, depth_infinity: bool) -> bool:
        return self._relocate(dest_path, keep_source=True)

    def _relocate(self, dest_path: str, *, keep_source: bool) -> bool:
        if not is_finder_metadata(dest_path.rstrip("/").rpartition("/")[2]):
            raise DAVError(HTTP_FORBIDDEN, "Finder metadata stays Finder metadata")
        self.store.move(self.path, dest_path.rstrip("/"), keep_source=keep_source)
        return True

    def set_last_modified(self, dest_path: str, time_stamp, *, dry_run: bool) -> bool:
        return True
