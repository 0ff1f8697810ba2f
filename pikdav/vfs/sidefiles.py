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

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

KEEP_LOCAL, STORE = "keep_local", "store"
FINDER_METADATA = (KEEP_LOCAL, STORE)  # the mount option finder_metadata


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
