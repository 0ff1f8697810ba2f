"""Finder's metadata files (``._name`` AppleDouble files and ``.DS_Store``), kept out of PikPak.

Finder writes a ``._name`` beside every file it copies (extended attributes, tags, resource
forks) and a ``.DS_Store`` in every folder it opens, and reads them back while the window is
open. Uploading them would fill the drive with hidden clutter that every other client (the
PikPak app, phones, rclone) then shows or syncs, and cost an upload per copied file. So by
default (``finder_metadata: keep_local``) pikdav accepts them, keeps them in memory for as
long as it runs, and never sends them to PikPak; Finder behaves as on any server, and the
drive stays clean. What is lost on a restart is Finder's window layout and tags for files
copied through pikdav. ``finder_metadata: store`` uploads them like any file instead.

Several instances behind a load balancer keep them on the shared Redis instead
(:class:`RedisSideStore`), bounded in the same way and each kept for a week after its last use.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

from .cluster import Cluster, ClusterDown

KEEP_LOCAL, STORE = "keep_local", "store"
FINDER_METADATA = (KEEP_LOCAL, STORE)  # the mount option finder_metadata


@dataclass(frozen=True)
class SideFileData:
    content: bytes
    modified: float


class SideFiles(Protocol):
    """Where a mount keeps Finder's metadata files (paths are the DAV paths)."""

    max_file: int

    def get(self, path: str) -> SideFileData | None: ...

    def put(self, path: str, content: bytes) -> None: ...

    def delete(self, path: str) -> None: ...

    def move(self, src: str, dest: str, *, keep_source: bool = False) -> None: ...


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


class RedisSideStore:
    """Finder's side files on the shared Redis, for every instance: at most ``max_bytes`` in
    all (least recently used first out), ``max_file`` each, each kept ``keep`` seconds after
    its last use. While Redis is down a side file reads as absent (Finder writes it again)
    and a write is refused with :class:`ClusterDown`."""

    def __init__(
        self,
        cluster: Cluster,
        mount: str,
        *,
        max_bytes: int = 64 << 20,
        max_file: int = 4 << 20,
        keep: float = 7 * 86400,
    ) -> None:
        self.cluster = cluster
        self.max_bytes = max_bytes
        self.max_file = max_file
        self.keep = keep
        self._index = cluster.key("side", mount, "used")  # path -> time of last use
        self._sizes = cluster.key("side", mount, "sizes")  # path -> bytes
        self._prefix = cluster.key("side", mount, "file", "")

    def _key(self, path: str) -> str:
        return self._prefix + path

    def get(self, path: str) -> SideFileData | None:
        def read(r):
            with r.pipeline() as p:
                p.hmget(self._key(path), "content", "modified")
                p.expire(self._key(path), int(self.keep))
                (content, modified), _ = p.execute()
            if content is None:
                return None
            r.zadd(self._index, {path: time.time()})
            return SideFileData(content, float(modified))

        try:
            return self.cluster.call(read)
        except ClusterDown:
            return None

    def put(self, path: str, content: bytes) -> None:
        now = time.time()

        def write(r):
            with r.pipeline() as p:
                p.hset(self._key(path), mapping={"content": content, "modified": now})
                p.expire(self._key(path), int(self.keep))
                p.zadd(self._index, {path: now})
                p.hset(self._sizes, path, len(content))
                p.execute()
            self._bound(r, now)

        self.cluster.call(write)

    def _bound(self, r, now: float) -> None:
        # Files that expired by themselves leave their index rows: drop those first.
        for gone in r.zrangebyscore(self._index, "-inf", now - self.keep):
            self._drop(r, gone.decode())
        total = sum(int(v) for v in r.hvals(self._sizes))
        while total > self.max_bytes:
            oldest = r.zrange(self._index, 0, 0)
            if not oldest:
                break
            path = oldest[0].decode()
            total -= int(r.hget(self._sizes, path) or 0)
            self._drop(r, path)

    def _drop(self, r, path: str) -> None:
        with r.pipeline() as p:
            p.delete(self._key(path))
            p.zrem(self._index, path)
            p.hdel(self._sizes, path)
            p.execute()

    def _under(self, r, path: str) -> list[str]:
        prefix = path.rstrip("/") + "/"
        return [
            k for k in (m.decode() for m in r.zrange(self._index, 0, -1))
            if k == path or k.startswith(prefix)
        ]  # fmt: skip

    def delete(self, path: str) -> None:
        def drop(r):
            for key in self._under(r, path):
                self._drop(r, key)

        self.cluster.call(drop)

    def move(self, src: str, dest: str, *, keep_source: bool = False) -> None:
        now = time.time()

        def relocate(r):
            for key in self._under(r, src):
                content, modified = r.hmget(self._key(key), "content", "modified")
                if content is None:
                    continue
                new = dest + key[len(src) :]
                if not keep_source:
                    self._drop(r, key)
                with r.pipeline() as p:
                    p.hset(self._key(new), mapping={"content": content, "modified": modified})
                    p.expire(self._key(new), int(self.keep))
                    p.zadd(self._index, {new: now})
                    p.hset(self._sizes, new, len(content))
                    p.execute()
            self._bound(r, now)

        self.cluster.call(relocate)
