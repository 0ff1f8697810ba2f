"""GCID, PikPak's content hash, and the short CID used by ``/drive/v1/resource/cid``.

GCID: the content is cut into blocks whose size starts at 256 KiB and doubles while the
file has more than 512 blocks, up to 2 MiB; GCID is the SHA-1 of the concatenated raw
SHA-1 digests of the blocks, written in upper-case hex.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

_MIN_BLOCK = 0x40000  # 256 KiB
_MAX_BLOCK = 0x200000  # 2 MiB
_CID_PIECE = 20480
_READ = 4 << 20  # bytes read at a time when hashing a file


def block_size(size: int) -> int:
    """The GCID block size PikPak uses for a file of ``size`` bytes."""
    block = _MIN_BLOCK
    while size // block > 512 and block < _MAX_BLOCK:
        block *= 2
    return block


class GcidHasher:
    """Computes a GCID incrementally from chunks of any size (for streaming uploads)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.block = block_size(size)
        self._outer = hashlib.sha1()  # noqa: S324 - PikPak's content id, not a security hash
        self._inner = hashlib.sha1()  # noqa: S324
        self._filled = 0
        self.consumed = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        self.consumed += len(view)
        while view:
            take = min(len(view), self.block - self._filled)
            self._inner.update(view[:take])
            self._filled += take
            view = view[take:]
            if self._filled == self.block:
                self._outer.update(self._inner.digest())
                self._inner = hashlib.sha1()  # noqa: S324
                self._filled = 0

    def hexdigest(self) -> str:
        outer = self._outer.copy()
        if self._filled:
            outer.update(self._inner.digest())
        return outer.hexdigest().upper()


def gcid_of_bytes(data: bytes) -> str:
    hasher = GcidHasher(len(data))
    hasher.update(data)
    return hasher.hexdigest()


def gcid_of_file(path: str | Path, size: int | None = None) -> str:
    """The GCID of a file; ``size`` (its length, measured when None) sets the block size."""
    size = os.path.getsize(path) if size is None else size
    hasher = GcidHasher(size)
    with open(path, "rb") as fh:
        while chunk := fh.read(_READ):
            hasher.update(chunk)
    return hasher.hexdigest()


def cid_of_pieces(size: int, read_at) -> str:
    """CID: SHA-1 of the whole file up to 60 KiB, else of three 20 KiB pieces
    at offsets 0, size/3 and size-20480. ``read_at(offset, length)`` returns bytes."""
    digest = hashlib.sha1()  # noqa: S324
    if size <= 3 * _CID_PIECE:
        digest.update(read_at(0, size))
    else:
        for offset in (0, size // 3, size - _CID_PIECE):
            digest.update(read_at(offset, _CID_PIECE))
    return digest.hexdigest().upper()
