"""The disk cache: each folder's last listing and the blocks players read first (the head and
the tail of each file), kept under ``state_dir`` across restarts, bounded in size.

The store is the ``diskcache`` library (SQLite beside value files, safe across threads and
processes, least recently used out first). What goes in is ours to check: every record carries
its length and a CRC-32, so that a record cut short (a crash, a full disk) or damaged is dropped
when it is read, never served. Values are bytes we encode, never pickles.

Blocks are keyed by PikPak's content hash (GCID) and the file's size, so a renamed, moved or
copied file, and a share's file of the same content, find the same blocks; a file whose hash
PikPak did not give has no blocks here. What is kept: the bytes read in the head and the tail of
a file (:data:`EDGE`), those read just after each place a client seeks to (:data:`SEEK`), and
whatever the memory block cache lets go of (:meth:`DiskCache.spill_block`); the last are kept
apart, in a quarter of the space (:data:`SPILLED_PART`), so that a film played through does not
push the library's heads and tails out. A file's bytes are cut in :data:`CHUNK`-sized cells;
a cell holds one contiguous run of its bytes (a read that starts mid-cell is kept). Nothing
that could sign a request is kept: no tokens, no links.

:class:`Outage` says whether PikPak is away for a mount, since when and why: while it is,
listings and cached blocks answer from here (see :class:`~.tree.DriveTree`).
"""

from __future__ import annotations

import json
import logging
import math
import queue
import struct
import threading
import time
import zlib
from collections import OrderedDict
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import diskcache

from pikdav.pikpak.errors import (
    LinkNotReady,
    LoginPaused,
    PikPakError,
    RateLimited,
    StoreUnreachable,
    Transient,
    redact,
)
from pikdav.pikpak.memory import DISK_WRITES, MemoryBudget

log = logging.getLogger(__name__)

KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30
DISK_SIZE = 2 * GIB  # cache.disk_size
SERVE_STALE_FOR = 7 * 86400.0  # cache.serve_stale_for: seconds
CHUNK = 1 * MIB  # a block cell
EDGE = 8 * MIB  # the head and the tail of a file that players read on every scan
SEEK = 8 * MIB  # after a seek: what a player reads first from where it lands (its buffer)
PENDING = 64 * MIB  # bytes waiting to be written at most; more are not kept
# ... of them, bytes the memory block cache let go of: they are outside the memory budget
# until written (the budget counts them as free), so few.
SPILL_PENDING = 16 * MIB
SPILLED_PART = 4  # 1/4 of the cache's size is for what the memory block cache let go of
PROBE_EVERY = 10.0  # seconds between tries of PikPak while it is away

_MAGIC = b"PDC1"
_HEADER = struct.Struct(">4sQI")  # magic, payload length, CRC-32 of the payload
_LO = struct.Struct(">Q")


class Damaged(ValueError):
    """A record that is not what was written (cut short, or changed)."""


def _pack(payload: bytes) -> bytes:
    return _HEADER.pack(_MAGIC, len(payload), zlib.crc32(payload)) + payload


def _unpack(record: Any) -> bytes:
    if not isinstance(record, bytes) or len(record) < _HEADER.size:
        raise Damaged("too short")
    magic, length, crc = _HEADER.unpack_from(record)
    payload = record[_HEADER.size :]
    if magic != _MAGIC or len(payload) != length or zlib.crc32(payload) != crc:
        raise Damaged("length or checksum differs")
    return payload


def content_key(gcid: str, size: int) -> str:
    """The block cache's name for a file's content (see :meth:`DiskCache.get_block`)."""
    return f"gcid:{gcid}:{size}"


def _content(key: str) -> tuple[str, int] | None:
    kind, _, rest = key.partition(":")
    gcid, _, size = rest.rpartition(":")
    if kind != "gcid" or not gcid or not size.isdigit():
        return None  # a file whose content hash is unknown: never on disk
    return gcid, int(size)


@dataclass
class Stored:
    """A folder's listing as it was fetched (``at``: wall-clock seconds)."""

    at: float
    entries: list[dict[str, Any]]


class DiskCache:
    """Listings and blocks on disk under ``directory``, at most ``size`` bytes in all."""

    def __init__(
        self,
        directory: Path,
        size: int = DISK_SIZE,
        *,
        serve_stale_for: float = SERVE_STALE_FOR,
        memory: MemoryBudget | None = None,
    ) -> None:
        """``memory``: the gateway's budget, which the blocks waiting to be written count in
        (when it is full, a block is not kept rather than held outside it)."""
        self.directory = directory
        self._memory = memory
        # Blocks waiting for the writer hold at most a quarter of the budget: streams keep
        # the rest for their read-ahead (a full queue starved them).
        self._pending_limit = min(PENDING, memory.limit // 4) if memory else PENDING
        self.size_limit = size
        self.serve_stale_for = serve_stale_for
        directory.mkdir(parents=True, exist_ok=True)
        spilled = size // SPILLED_PART
        self._store: Any = _OnFewThreads(_open(directory, size - spilled, tag_index=True))
        # What the memory block cache let go of, apart (its own least recently used out; few
        # at a time, as its writes are many and it may be small).
        spilled_store = _open(directory / "spilled", spilled, cull_limit=2)
        self._spilled_store: Any = _OnFewThreads(spilled_store, 1)
        # Read by the status page and the metrics.
        self.block_hits = 0
        self.block_misses = 0
        self.listing_hits = 0
        self.listing_misses = 0
        self.stale_answers = 0
        self.dropped = 0  # damaged records found and dropped
        self._lock = threading.Lock()
        self._spans: OrderedDict[str, tuple[int, int]] = OrderedDict()  # cells known on disk
        self._queue: queue.Queue[tuple[str, int, Any, int, int, bool] | None] = queue.Queue()
        self._pending = 0  # bytes queued to be written
        self._spilled = 0  # ... of them, let go of by the memory block cache
        self._writer = threading.Thread(target=self._write_blocks, name="disk cache", daemon=True)
        self._writer.start()
        self._store.own(self._writer)
        self._spilled_store.own(self._writer)

    # ------------------------------------------------------------------ size
    def volume(self) -> int:
        """Bytes the cache takes on disk (records and its database)."""
        return int(self._store.volume()) + int(self._spilled_store.volume())

    def clear(self) -> None:
        self.flush()
        self._store.clear()
        self._spilled_store.clear()
        with self._lock:
            self._spans.clear()

    def close(self) -> None:
        self._queue.put(None)
        self._writer.join(timeout=10)
        self._store.stop()
        self._spilled_store.stop()

    # ------------------------------------------------------------------ records
    def _read(self, key: str, store: Any = None) -> bytes | None:
        store = self._store if store is None else store
        record = store.get(key)
        if record is None:
            return None
        try:
            return _unpack(record)
        except Damaged as exc:
            self.dropped += 1
            log.warning("disk cache: a damaged record (%s) was dropped", exc)
            store.delete(key)
            return None

    # ------------------------------------------------------------------ listings
    def listing(self, scope: str, folder_id: str) -> Stored | None:
        """The folder's last listing kept for ``scope`` (a mount), or None."""
        payload = self._read(f"L|{scope}|{folder_id}")
        if payload is None:
            self.listing_misses += 1
            return None
        try:
            data = json.loads(payload)
            stored = Stored(float(data["at"]), list(data["entries"]))
        except (ValueError, KeyError, TypeError):
            self.dropped += 1
            self._store.delete(f"L|{scope}|{folder_id}")
            self.listing_misses += 1
            return None
        self.listing_hits += 1
        return stored

    def keep_listing(self, scope: str, folder_id: str, at: float, entries: list[dict]) -> None:
        payload = json.dumps({"at": at, "entries": entries}, separators=(",", ":")).encode()
        self._store.set(f"L|{scope}|{folder_id}", _pack(payload), tag=scope)

    def forget_listing(self, scope: str, folder_id: str) -> None:
        self._store.delete(f"L|{scope}|{folder_id}")

    def forget_listings(self, scope: str) -> None:
        """Every listing of ``scope`` (its notices may have been missed)."""
        self._store.evict(scope)

    # ------------------------------------------------------------------ blocks
    def get_block(self, key: str, pos: int) -> tuple[int, bytes] | None:
        """A kept run of the content ``key`` that holds the byte at ``pos``: (its start, its
        bytes); None when there is none (or ``key`` names no content hash)."""
        content = _content(key)
        if content is None:
            return None
        cell = f"B|{content[0]}|{content[1]}|{pos // CHUNK}"
        for spilled in (False, True):
            payload = self._read(cell, self._spilled_store if spilled else None)
            if payload is not None:
                (lo,) = _LO.unpack_from(payload)
                data = payload[_LO.size :]
                if lo <= pos < lo + len(data):
                    self.block_hits += 1
                    self._known(_name(cell, spilled), lo, lo + len(data))
                    return lo, data
        self.block_misses += 1
        return None

    def put_block(
        self, key: str, start: int, data: bytes | bytearray, *, seek: int | None = None
    ) -> None:
        """Keep the bytes of ``data`` (the content ``key`` from ``start``) that lie in the
        head or the tail of the file, or within :data:`SEEK` bytes after ``seek`` (where the
        client's read began: a player's seek); written by a thread of the cache, in the order
        given. ``data`` must not change after (as for the memory block cache)."""
        content = _content(key)
        if content is None or not data:
            return
        size = content[1]
        spans = [(0, min(EDGE, size)), (max(0, size - EDGE), size)]
        if seek is not None:
            spans.append((seek, min(seek + SEEK, size)))
        spans.sort()
        lo, hi = spans[0]
        for next_lo, next_hi in [*spans[1:], (size + 1, size + 1)]:
            if next_lo > hi:  # each byte queued once, where the spans overlap too
                if not self._put(content, start, data, lo, hi):
                    return  # the disk is behind: these bytes are not kept
                lo = next_lo
            hi = max(hi, next_hi)

    def spill_block(self, key: str, start: int, data: bytes | bytearray) -> None:
        """Keep all of ``data``: a piece the memory block cache lets go of (when the disk is
        not too far behind; never waited for)."""
        content = _content(key)
        if content is not None and data:
            self._put(content, start, data, start, start + len(data), spill=True)

    def _put(
        self,
        content: tuple[str, int],
        start: int,
        data: bytes | bytearray,
        lo: int,
        hi: int,
        *,
        spill: bool = False,
    ) -> bool:
        """Queue the cells of ``data`` between ``lo`` and ``hi`` that are not on disk yet;
        False when that would make more bytes wait than :data:`PENDING` (or
        :data:`SPILL_PENDING` for a ``spill``)."""
        gcid, size = content
        lo, hi = max(lo, start), min(hi, start + len(data))
        while lo < hi:
            cell_end = min(hi, (lo // CHUNK + 1) * CHUNK)
            cell = f"B|{gcid}|{size}|{lo // CHUNK}"
            held = self._covered(cell, lo, cell_end)
            if not held and spill:
                held = self._covered(_name(cell, True), lo, cell_end)
            if not held:
                count = cell_end - lo
                with self._lock:
                    if self._pending + count > self._pending_limit or (
                        spill and self._spilled + count > SPILL_PENDING
                    ):
                        return False
                    self._pending += count
                    self._spilled += count if spill else 0
                    self._spans.pop(_name(cell, spill), None)
                # Counted in the budget; nothing is reclaimed for it (the block cache's pieces
                # are worth more to streams re-reading them than a write is).
                if self._memory is not None and not self._memory.take(
                    count, holder=DISK_WRITES, reclaim=False
                ):
                    self._unqueue(count, spill)
                    return False  # the budget is full: these bytes are not kept
                # A copy of the cell alone: the segment or piece it was cut from (up to 32 MiB)
                # is not kept alive, outside the budget, until the writer gets to it.
                piece = bytes(memoryview(data)[lo - start : cell_end - start])
                self._queue.put((cell, lo, piece, 0, count, spill))
            lo = cell_end
        return True

    def _unqueue(self, count: int, spill: bool) -> None:
        with self._lock:
            self._pending -= count
            self._spilled -= count if spill else 0

    def flush(self) -> None:
        """Wait until the blocks given so far are written."""
        self._queue.join()

    def _covered(self, cell: str, lo: int, hi: int) -> bool:
        with self._lock:
            span = self._spans.get(cell)
            return span is not None and span[0] <= lo and hi <= span[1]

    def _known(self, cell: str, lo: int, hi: int) -> None:
        with self._lock:
            self._spans[cell] = (lo, hi)
            self._spans.move_to_end(cell)
            while len(self._spans) > 65536:
                self._spans.popitem(last=False)

    def _write_blocks(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    self._store.close()  # this thread's connections
                    self._spilled_store.close()
                    return
                cell, lo, data, a, b, spill = job
                self._unqueue(b - a, spill)
                if self._memory is not None:
                    self._memory.give_back(b - a, holder=DISK_WRITES)
                try:
                    self._write_cell(cell, lo, bytes(data[a:b]), spill)
                except Exception:  # a full or failing disk: the bytes are only not kept
                    log.warning("disk cache: cannot write a block", exc_info=True)
            finally:
                self._queue.task_done()

    def _write_cell(self, cell: str, lo: int, piece: bytes, spilled: bool = False) -> None:
        store = self._spilled_store if spilled else self._store
        old = self._read(cell, store)
        if old is not None:
            (old_lo,) = _LO.unpack_from(old)
            old_data = old[_LO.size :]
            old_hi, hi = old_lo + len(old_data), lo + len(piece)
            if old_lo <= lo and hi <= old_hi:
                self._known(_name(cell, spilled), old_lo, old_hi)
                return  # held already
            if old_lo <= lo <= old_hi:  # one run: the old bytes, then the new ones
                piece = old_data[: lo - old_lo] + piece
                lo = old_lo
            elif lo <= old_lo <= hi and old_hi > hi:  # the new bytes, then the old ones
                piece = piece + old_data[hi - old_lo :]
            elif len(old_data) >= len(piece):
                return  # two runs apart: the longer one stays
        store.set(cell, _pack(_LO.pack(lo) + piece))
        self._known(_name(cell, spilled), lo, lo + len(piece))


def _name(cell: str, spilled: bool) -> str:
    """What :attr:`DiskCache._spans` calls a cell of either store."""
    return "S" + cell if spilled else cell


def _open(
    directory: Path, size: int, *, tag_index: bool = False, cull_limit: int = 16
) -> diskcache.Cache:
    store = diskcache.Cache(
        str(directory),
        size_limit=size,
        eviction_policy="least-recently-used",
        tag_index=tag_index,
        # Cells evicted per write once the size is reached: diskcache drops this many, the
        # least recently used, whatever their size.
        cull_limit=cull_limit,
        statistics=False,
    )
    store.close()  # this thread's connection: the store is used on threads of its own
    return store


class _OnFewThreads:
    """The store, used on a few threads of its own: diskcache opens a SQLite connection (and
    its files) for each thread that uses it, and requests come on any of the server's many
    threads. A thread made :meth:`own` (the block writer) uses the store directly."""

    def __init__(self, store: diskcache.Cache, threads: int = 2) -> None:
        self._store = store
        self._jobs: queue.Queue[tuple[Any, tuple, dict, Future] | None] = queue.Queue()
        self._threads = [
            threading.Thread(target=self._work, name="disk cache reads", daemon=True)
            for _ in range(threads)
        ]
        self._own: set[int] = set()
        for thread in self._threads:
            thread.start()
            self.own(thread)

    def own(self, thread: threading.Thread) -> None:
        assert thread.ident is not None
        self._own.add(thread.ident)

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._store, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() in self._own:
                return method(*args, **kwargs)
            done: Future = Future()
            self._jobs.put((method, args, kwargs, done))
            return done.result()

        return call

    def stop(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join(timeout=10)

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            method, args, kwargs, done = job
            try:
                done.set_result(method(*args, **kwargs))
            except BaseException as exc:  # the caller hears of it
                done.set_exception(exc)
        self._store.close()  # this thread's connection


def is_away(exc: BaseException) -> bool:
    """Whether ``exc`` says PikPak cannot be reached or will not answer for now (refused
    connections, timeouts, 5xx, 429, "too frequent", a pause on sign-ins) — when a mount's
    disk cache answers instead — rather than that it refused this one request."""
    if isinstance(exc, LinkNotReady | StoreUnreachable):
        return False
    return isinstance(exc, Transient | RateLimited | LoginPaused)


class Outage:
    """Whether PikPak is away for a mount: since when (wall clock) and why, said once in the
    log when it begins and when it ends. While it lasts, PikPak is tried again at most every
    :data:`PROBE_EVERY` seconds (:meth:`try_now`), or after as long as PikPak asked us to wait
    (its Retry-After), which is also what clients are told."""

    def __init__(self, name: str, probe_every: float = PROBE_EVERY) -> None:
        self.name = name
        self.probe_every = probe_every
        self.since: float | None = None
        self.reason = ""
        self._tried = 0.0
        self._wait = probe_every
        self._doubts = 0
        self._doubted = (0.0, "")  # since when (wall clock) and why, while doubted
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return self.since is not None

    @property
    def doubted(self) -> bool:
        """True while a fetch that PikPak failed once tries again: whether PikPak is away is
        not known yet, and folders kept on disk are served from there meanwhile."""
        return self._doubts > 0

    def doubt(self, exc: BaseException) -> None:
        """A fetch failed once with ``exc`` and tries again (see :attr:`doubted`)."""
        with self._lock:
            if self._doubts == 0:
                self._doubted = (time.time(), _reason(exc))
            self._doubts += 1

    def settle(self) -> None:
        """The doubting fetch ended (with an answer, or with :meth:`began`)."""
        with self._lock:
            self._doubts = max(0, self._doubts - 1)

    def began(self, exc: BaseException) -> None:
        asked = exc.retry_after if isinstance(exc, PikPakError) else None
        with self._lock:
            self._tried = time.monotonic()
            self._wait = max(self.probe_every, asked or 0.0)
            if self.since is not None:
                return
            self.since = time.time()
            self.reason = _reason(exc)
        log.warning(
            "mount %s: PikPak is away (%s); serving listings and cached blocks from the disk "
            "cache, refusing changes, until it answers",
            self.name,
            self.reason,
        )

    def ended(self) -> None:
        if self.since is None:
            return
        with self._lock:
            since, self.since = self.since, None
        if since is not None:
            log.warning(
                "mount %s: PikPak answers again; no longer serving from the disk cache "
                "(served from it for %.0f s)",
                self.name,
                time.time() - since,
            )

    def try_now(self) -> bool:
        """True when PikPak should be asked (it is not away, or a new try is due)."""
        with self._lock:
            if self.since is None:
                return True
            if time.monotonic() - self._tried >= self._wait:
                self._tried = time.monotonic()
                return True
            return False

    def retry_after(self) -> int:
        with self._lock:
            return max(1, math.ceil(self._wait - (time.monotonic() - self._tried)))

    def describe(self) -> str:
        """ "serving from its disk cache since 12:00:03 UTC because …" (or ""); while a
        failure is in doubt, that folders kept on disk are answered from there meanwhile."""
        since = self.since
        if since is None:
            if not self.doubted:
                return ""
            since, reason = self._doubted
            clock = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(since))
            return (
                f"a call failed ({reason}); folders kept on disk are answered from there "
                f"while PikPak is asked again (since {clock})"
            )
        clock = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(since))
        return f"serving from its disk cache since {clock} because {self.reason}"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, LoginPaused):
        return f"sign-ins are paused: {exc.short}"
    if isinstance(exc, RateLimited):
        wait = max(1, math.ceil(exc.retry_after or PROBE_EVERY))
        return f"rate limiting: PikPak asks the gateway to wait {wait} s before its next request"
    if isinstance(exc, PikPakError):
        return redact(str(exc))[:200]
    return type(exc).__name__
