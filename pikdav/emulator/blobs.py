"""Content the emulator can serve: real bytes kept on disk, or synthetic bytes made from a seed.

Both are content-addressed by GCID, which is how PikPak recognises content it already
has (instant upload). Synthetic content lets a test or the demo hold files of many GiB
without storing them: a 1 MiB random buffer per seed, and every 1 MiB block of the file
is that buffer rotated by an amount derived from the block number, handed out as a
memoryview of a doubled buffer, so serving it costs no copying.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from pikdav.pikpak.gcid import GcidHasher, cid_of_pieces

_MIB = 1 << 20


class Blob:
    size: int
    gcid: str
    cid: str

    def iter_range(self, start: int, end: int) -> Iterator[memoryview | bytes]:
        """Bytes ``start`` to ``end`` (exclusive), in chunks of up to 1 MiB."""
        raise NotImplementedError

    def read_at(self, offset: int, length: int) -> bytes:
        return b"".join(bytes(c) for c in self.iter_range(offset, min(self.size, offset + length)))

    def _index(self) -> None:
        hasher = GcidHasher(self.size)
        for chunk in self.iter_range(0, self.size):
            hasher.update(chunk)
        self.gcid = hasher.hexdigest()
        self.cid = cid_of_pieces(self.size, self.read_at)


class SyntheticBlob(Blob):
    _bases: ClassVar[dict[int, bytes]] = {}
    _bases_lock = threading.Lock()

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.seed = seed
        with self._bases_lock:
            base = self._bases.get(seed)
            if base is None:
                once = random.Random(seed).randbytes(_MIB)
                base = self._bases[seed] = once + once
        self._doubled = memoryview(base)
        self._index()

    def _rotation(self, block: int) -> int:
        return (block * 2654435761 + self.seed * 40503 + 12345) % _MIB

    def iter_range(self, start: int, end: int) -> Iterator[memoryview]:
        pos = start
        while pos < end:
            block, inner = divmod(pos, _MIB)
            take = min(_MIB - inner, end - pos)
            offset = self._rotation(block) + inner
            yield self._doubled[offset : offset + take]
            pos += take


class FileBlob(Blob):
    def __init__(self, path: Path, size: int, gcid: str | None = None) -> None:
        self.path = path
        self.size = size
        if gcid is None:
            self._index()
        else:
            self.gcid = gcid
            self.cid = cid_of_pieces(size, self.read_at)

    def iter_range(self, start: int, end: int) -> Iterator[bytes]:
        with open(self.path, "rb") as fh:
            fh.seek(start)
            remaining = end - start
            while remaining > 0:
                chunk = fh.read(min(_MIB, remaining))
                if not chunk:
                    break
                remaining -= len(chunk)
                yield chunk


@dataclass(frozen=True)
class Ingested:
    """A file of uploaded bytes measured on its way to the blob store."""

    path: Path
    size: int
    gcid: str


class BlobStore:
    """Every piece of content the emulator knows, by GCID and by (CID, size)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self._by_gcid: dict[str, Blob] = {}
        self._by_cid: dict[tuple[str, int], str] = {}
        self._lock = threading.Lock()

    def _register(self, blob: Blob) -> Blob:
        with self._lock:
            known = self._by_gcid.get(blob.gcid)
            if known is not None:
                return known
            self._by_gcid[blob.gcid] = blob
            self._by_cid[(blob.cid, blob.size)] = blob.gcid
            return blob

    def get(self, gcid: str) -> Blob | None:
        with self._lock:
            return self._by_gcid.get(gcid.upper())

    def gcid_for_cid(self, cid: str, size: int) -> str | None:
        with self._lock:
            return self._by_cid.get((cid.upper(), size))

    def add_synthetic(self, size: int, seed: int) -> Blob:
        return self._register(SyntheticBlob(size, seed))

    def add_bytes(self, data: bytes) -> Blob:
        fd, name = tempfile.mkstemp(dir=self.directory, prefix="in-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return self.add_file(Path(name), len(data))

    def add_file(self, path: Path, size: int, gcid: str | None = None) -> Blob:
        """Take ownership of ``path`` (moved into the store) and index it."""
        blob = FileBlob(path, size, gcid)
        final = self.directory / f"blob-{blob.gcid}"
        with self._lock:
            known = self._by_gcid.get(blob.gcid)
        if known is not None:
            path.unlink(missing_ok=True)
            return known
        shutil.move(path, final)
        blob.path = final
        return self._register(blob)

    def new_spool(self) -> Path:
        fd, name = tempfile.mkstemp(dir=self.directory, prefix="spool-")
        os.close(fd)
        return Path(name)

    def ingest(self, stream, length: int | None, path: Path | None = None) -> Ingested:
        """Copy a request body to a spool file while computing its GCID.

        The GCID's block size depends on the total size, so a body of unknown length is
        hashed in a second pass over the spool."""
        path = path or self.new_spool()
        size = 0
        hasher = GcidHasher(length) if length is not None else None
        with open(path, "wb") as fh:
            remaining = length
            while remaining is None or remaining > 0:
                chunk = stream.read(_MIB if remaining is None else min(_MIB, remaining))
                if not chunk:
                    break
                fh.write(chunk)
                if hasher is not None:
                    hasher.update(chunk)
                size += len(chunk)
                if remaining is not None:
                    remaining -= len(chunk)
        if hasher is None or size != length:
            hasher = GcidHasher(size)
            with open(path, "rb") as fh:
                while chunk := fh.read(_MIB):
                    hasher.update(chunk)
        return Ingested(path, size, hasher.hexdigest())
