"""Reading a file from PikPak's download servers through several connections at once.

PikPak's CDN throttles each connection (a few MB/s) and sits tens of milliseconds away, so one
connection gives one connection's speed however fast the line is. :class:`SegmentedReader`
reads the same bytes as :class:`~.cdn.LinkReader` — a lazy, seekable reader of a link's
``start`` to ``end`` — from ranged requests in parallel: a small first segment, so that the
first byte comes as soon as a single request would bring it, then segments of a few MiB fetched
by up to ``connections`` workers, handed to the caller in order as they arrive.

Bounds: a stream never holds more than ``ahead`` bytes beyond the caller's position (a player
that reads slowly does not make the gateway download the whole file), so its memory is at most
``ahead`` plus one segment. A seek outside what is scheduled cancels the segments no longer
needed and starts again at the new offset. A dropped connection or an expired link resumes
only its own segment (at the byte it had reached, with a fresh link when the CDN says the old
one is stale), within :data:`~.retry.STREAM_RESUMES`.

Every connection is counted against the account's :class:`ConnectionBudget` (PikPak serves
about 20 per account and 8 per signed link; more earn 503s), so that ten players of one
account never earn a 503; a 503 that comes anyway lowers the budget for a while instead of
failing the stream. Pieces read are kept in a :class:`BlockCache` shared by the streams of the
same file: players re-read the same header and index blocks on every seek.
"""

from __future__ import annotations

import bisect
import io
import logging
import mmap
import socket
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import requests

from .cdn import (
    READ_MOST,
    STREAM_ERRORS,
    ByteReader,
    LinkBytes,
    LinkReader,
    Stopping,
    StreamGone,
    described,
)
from .errors import CdnAnswer, cdn_answer
from .memory import BLOCK_CACHE, STREAMS, MemoryBudget, buffer, hand_back_freed_memory
from .retry import CDN_BUSY, STREAM_RESUMES, RetryPolicy
from .types import Link

log = logging.getLogger(__name__)

KIB, MIB = 1 << 10, 1 << 20
MAX_SEGMENT = 32 * MIB  # segments grow to this on a CDN that does not throttle
HANDOFF = 512 * KIB  # what a read waits for before it returns (less at a run's end)
MIN_SEGMENT = 64 * KIB  # the least a segment is worth when the memory budget is short


class _Busy(Exception):
    """The CDN answered 503: too many connections."""


class _ClosedEarly(OSError):
    """The download server ended its answer before the range was complete (a drop)."""


@dataclass(frozen=True)
class SegmentPlan:
    """How a stream is cut: ``first`` bytes for a fast first byte, then ``size`` each, by up
    to ``connections`` at once, never more than ``ahead`` bytes beyond the reader."""

    connections: int = 8
    first: int = 256 * KIB
    size: int = 2 * MIB
    ahead: int = 16 * MIB
    # A connection faster than this is not throttled by the CDN: more of them would only
    # share the same CPU and line (on an unthrottled CDN one connection is fastest).
    fast: float = 64e6

    def __post_init__(self) -> None:
        if self.connections < 1 or self.first < 1 or self.size < 1:
            raise ValueError("a segment plan needs at least one connection and some bytes")


class ConnectionBudget:
    """How many connections to the CDN may be open at once (for one account, or one file's
    link). A 503 (the CDN counted more than it allows) lowers the limit by one, never below
    one; after ``recover`` seconds without a 503 it rises by one again, up to where it began."""

    def __init__(self, limit: int, *, recover: float = 30.0) -> None:
        if limit < 1:
            raise ValueError("a connection budget needs at least one connection")
        self.most = limit
        self.limit = limit
        self.in_use = 0
        self.peak = 0
        self.refusals = 0
        self._recover = recover
        self._lowered_at = 0.0
        self._cond = threading.Condition()

    def acquire(self, give_up: Callable[[], bool]) -> bool:
        """Wait for a connection; False when ``give_up`` says so first."""
        with self._cond:
            while True:
                self._maybe_recover()
                if self.in_use < self.limit:
                    self.in_use += 1
                    self.peak = max(self.peak, self.in_use)
                    return True
                if give_up():
                    return False
                self._cond.wait(0.2)

    def release(self) -> None:
        with self._cond:
            self.in_use -= 1
            self._cond.notify()

    def refused(self) -> None:
        """The CDN answered 503: it counts more connections than we thought we had."""
        with self._cond:
            self.refusals += 1
            self._lowered_at = time.monotonic()
            if self.limit > 1:
                self.limit -= 1
                log.info("the CDN refused a connection; using at most %d now", self.limit)

    def _maybe_recover(self) -> None:
        if self.limit < self.most and time.monotonic() - self._lowered_at > self._recover:
            self.limit += 1
            self._lowered_at = time.monotonic()
            self._cond.notify_all()


class BlockTier(Protocol):
    """A second, larger place for blocks (the disk cache), behind the memory one."""

    def get_block(self, key: str, pos: int) -> tuple[int, bytes] | None: ...

    def put_block(
        self, key: str, start: int, data: bytes | bytearray, *, seek: int | None = None
    ) -> None: ...

    def spill_block(self, key: str, start: int, data: bytes | bytearray) -> None: ...


class BlockCache:
    """Pieces of files recently read, shared by every stream of the same file (``key``: the
    file's id and content hash), least recently used out first, ``max_bytes`` in all and within
    ``memory`` (the gateway's budget: a stream's read-ahead that needs room takes it from here).

    With a ``tier``, :meth:`find` looks there too when memory misses, :meth:`keep` puts
    pieces there as well (the tier chooses what it keeps), and pieces let go of here go there
    (its ``spill_block``: it never waits)."""

    def __init__(
        self,
        max_bytes: int = 64 * MIB,
        memory: MemoryBudget | None = None,
        *,
        tier: BlockTier | None = None,
    ) -> None:
        self.tier = tier
        self.max_bytes = max_bytes
        self.size = 0
        self.hits = 0  # bytes served from the cache
        self._pieces: OrderedDict[tuple[str, int], bytes | bytearray] = OrderedDict()
        self._starts: dict[str, list[int]] = {}
        self._lock = threading.Lock()
        self._memory = memory
        if memory is not None:
            memory.reclaim_with(self.reclaim)

    def get(self, key: str, pos: int) -> tuple[int, bytes | bytearray] | None:
        """A cached piece of ``key`` holding the byte at ``pos``: (its start, its bytes)."""
        with self._lock:
            starts = self._starts.get(key)
            if not starts:
                return None
            at = bisect.bisect_right(starts, pos) - 1
            # A longer piece may start before a shorter one that also holds pos.
            for start in reversed(starts[max(0, at - 3) : at + 1]):
                data = self._pieces[(key, start)]
                if start <= pos < start + len(data):
                    self._pieces.move_to_end((key, start))
                    return start, data
            return None

    def find(self, key: str, pos: int) -> tuple[int, bytes | bytearray] | None:
        """As :meth:`get`, then from the tier (the piece found there is kept in memory)."""
        found = self.get(key, pos)
        if found is None and self.tier is not None:
            found = self.tier.get_block(key, pos)
            if found is not None:
                self.put(key, *found)
        return found

    def keep(
        self, key: str, start: int, data: bytes | bytearray, *, seek: int | None = None
    ) -> None:
        """As :meth:`put`, and in the tier (``seek``: where the reader of ``data`` began, a
        player's seek, whose first bytes the tier keeps)."""
        self.put(key, start, data)
        if self.tier is not None:
            self.tier.put_block(key, start, data, seek=seek)

    def put(self, key: str, start: int, data: bytes | bytearray) -> None:
        """Keep ``data`` (nobody may change it after: it is handed out as it is)."""
        if not data or len(data) > self.max_bytes:
            return
        with self._lock:
            old = self._pieces.pop((key, start), None)
            if old is not None:
                self.size -= len(old)
                self._give_back(len(old))
                if len(old) > len(data):
                    data = old  # keep the longer one
            else:
                bisect.insort(self._starts.setdefault(key, []), start)
            while self.size + len(data) > self.max_bytes:
                self._drop_oldest()
            if self._memory is not None:
                # The budget is shared: what this cache holds makes room for the newer piece.
                granted = self._memory.take(len(data), holder=BLOCK_CACHE, reclaim=False)
                while not granted and self._pieces:
                    self._drop_oldest()
                    granted = self._memory.take(len(data), holder=BLOCK_CACHE, reclaim=False)
                if not granted:
                    self._forget_start(key, start)
                    return  # no room in the budget even for this piece alone
            self._pieces[(key, start)] = data
            self.size += len(data)

    def reclaim(self, count: int) -> None:
        """Let go of at least ``count`` bytes (or all), least recently used first."""
        with self._lock:
            goal = self.size - count
            while self._pieces and self.size > goal:
                self._drop_oldest()

    def _drop_oldest(self) -> None:
        (old_key, old_start), dropped = self._pieces.popitem(last=False)
        self.size -= len(dropped)
        self._give_back(len(dropped))
        self._forget_start(old_key, old_start)
        if self.tier is not None:
            self.tier.spill_block(old_key, old_start, dropped)  # queued, written off this thread

    def _forget_start(self, key: str, start: int) -> None:
        starts = self._starts[key]
        starts.remove(start)
        if not starts:
            del self._starts[key]

    def _give_back(self, count: int) -> None:
        if self._memory is not None:
            self._memory.give_back(count, holder=BLOCK_CACHE)


class _Segment:
    """Bytes ``start`` to ``end`` of the file, filled by one worker as they arrive."""

    def __init__(
        self, start: int, end: int, cached: bytes | memoryview | None = None, held: int = 0
    ) -> None:
        self.start = start
        self.end = end
        # A cached piece is read as it is (it is never written again). A fetched one is
        # filled in place, made at its full size at once: growing it as bytes
        # came copied it again and again, and left glibc's heaps in pieces (BENCHMARKS.md);
        # pages of its own are handed back to the system as soon as it is let go.
        self.data: bytearray | bytes | memoryview | mmap.mmap = (
            cached if cached is not None else buffer(end - start)
        )
        self.got = len(self.data) if cached is not None else 0  # bytes in it so far
        self.held = held  # bytes of the memory budget taken for it
        self.filling = False  # a worker is writing into it now
        self.dropped = False  # the reader has let go of it
        self.done = cached is not None
        self.taken = cached is not None  # a worker has it (or nobody needs to)
        self.cancelled = False
        self.failure: StreamGone | None = None
        self.response: requests.Response | None = None
        self.fetched = 0  # bytes that came from the CDN (not from the cache)
        self.kept = 0  # bytes of it in the block cache already
        self.from_cache = cached is not None

    @property
    def filled(self) -> int:
        return self.start + self.got


class SegmentedReader(LinkBytes):
    """Bytes ``start`` to ``end`` (exclusive) of a file of ``size`` bytes, read through
    ``link(fresh)`` with the CDN session ``http``, by parallel segments (see the module).

    ``key`` names the file's content in ``cache``; ``budget`` is the account's connections,
    ``link_budget`` those of the file's link (shared by every stream of the file); ``memory``
    the gateway's memory budget: each segment takes its bytes from it before it is fetched,
    segments are smaller and fewer when it is short, and with no room at all the bytes come
    through one connection straight to the caller, nothing read ahead."""

    def __init__(
        self,
        http: requests.Session,
        size: int,
        link: Callable[[bool], Link],
        *,
        budget: ConnectionBudget,
        link_budget: ConnectionBudget | None = None,
        cache: BlockCache | None = None,
        key: str = "",
        plan: SegmentPlan = SegmentPlan(),
        start: int = 0,
        end: int | None = None,
        name: str = "",
        timeout: float = 60.0,
        stop: Stopping | None = None,
        resumes: RetryPolicy = STREAM_RESUMES,
        workers: int = 1,
        host_failed: Callable[[str], None] | None = None,
        memory: MemoryBudget | None = None,
    ) -> None:
        super().__init__(
            http,
            size,
            link,
            start=start,
            end=end,
            name=name,
            timeout=timeout,
            stop=stop,
            host_failed=host_failed,
        )
        self.fetched = 0  # bytes that came from the CDN
        self._memory = memory
        self._direct: LinkReader | None = None  # while the memory budget has no room
        self.direct_reads = 0  # reads that went straight through for want of room
        if memory is not None:
            memory.stream_began()
        self._budget = budget
        self._link_budget = link_budget
        self._cache = cache
        self._key = key
        self._plan = plan
        self._resumes = resumes
        self._segments: deque[_Segment] = deque()
        self._end = size  # where the scheduled run of segments stops
        self._cond = threading.Condition()
        self._working = 0  # worker threads, counted under the lock
        # Connections wanted: one more each time the caller has to wait for the CDN (a fast
        # CDN keeps one connection ahead of the caller; a throttled one gets several).
        self.workers = max(1, min(workers, plan.connections))
        self.rate = 0.0  # bytes per second of one connection, as last measured
        # Segments grow while connections are fast: then a request costs more than its bytes.
        self._segment_size = plan.size
        self._run_start = 0
        self._run_cached = 0  # bytes of the run the cache served
        self._closing = False
        self.on_close: Callable[[], None] | None = None

    # ------------------------------------------------------------------ io
    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def read(self, size: int = -1) -> bytes:
        if self.pos >= self.size or self._stopping():
            return b""
        want = self.size - self.pos if size is None or size < 0 else size
        direct = None
        with self._cond:
            segment = self._segment_at(self.pos)
            if segment is None:
                chunk = None
            else:
                direct, self._direct = self._direct, None  # room again: segments from here
                chunk = self._take(segment, want)
        if direct is not None:
            direct.close()
        if chunk is None:
            chunk = self._read_direct(want)
        self.pos += len(chunk)
        self.delivered += len(chunk)
        return chunk

    def _take(self, segment: _Segment, want: int) -> bytes:
        """Up to ``want`` bytes at the caller's position, from ``segment`` (lock held)."""
        starved = False
        # Wait for a useful amount, not for every byte (a thread handoff per network read
        # would cost more than the copy); the first byte of a run is handed over at once.
        enough = 1 if self.pos == self._run_start else min(want, HANDOFF)
        while segment.filled - self.pos < min(enough, segment.end - self.pos) and not (
            segment.done or segment.failure is not None
        ):
            if self._stopping():
                return b""
            if not starved and self.pos > self._run_start and 0 < self.rate < self._plan.fast:
                # The caller waits for a throttled CDN in the middle of a run (not for its
                # first byte, which every request waits for): one more connection helps.
                starved = True
                self.workers = min(self._plan.connections, self.workers + 1)
                self._top_up(self.pos)
            self._cond.wait(0.5)
        if segment.failure is not None and segment.filled <= self.pos:
            raise StreamGone(str(segment.failure), self.delivered)
        at = self.pos - segment.start
        with memoryview(segment.data) as view:
            return bytes(view[at : at + min(want, READ_MOST, segment.filled - self.pos)])

    def _read_direct(self, want: int) -> bytes:
        """No room in the memory budget for a segment: the bytes at the caller's position
        through one connection, as they come."""
        self.direct_reads += 1
        if self._direct is None:
            start, end = self.planned
            self._direct = LinkReader(
                self.http, self.size, self.link, start=start, end=end, name=self.name,
                timeout=self.timeout, stop=self._stop, host_failed=self._host_failed,
            )  # fmt: skip
        self._direct.seek(self.pos)
        try:
            return self._direct.read(min(want, READ_MOST))
        except StreamGone as exc:
            raise StreamGone(str(exc), self.delivered) from None

    def close(self) -> None:
        if self.closed:
            return
        self._leave_stop()
        with self._cond:
            self._closing = True
            for segment in self._segments:
                self._cancel(segment)
            self._segments.clear()
            self._cond.notify_all()
            direct, self._direct = self._direct, None
        if direct is not None:
            direct.close()
        if self._memory is not None:
            self._memory.stream_ended()
        if self.on_close is not None:
            self.on_close()
        super().close()
        hand_back_freed_memory()

    # ------------------------------------------------------------------ scheduling
    def _segment_at(self, pos: int) -> _Segment | None:
        """The segment holding ``pos`` (with the lock held), segments before it let go and
        the read-ahead topped up; a position outside the scheduled run starts a new one.
        None: the memory budget has no room for one."""
        while self._segments and self._segments[0].end <= pos:
            self._let_go(self._segments.popleft())
        if not self._segments or self._segments[0].start > pos:
            for segment in self._segments:
                self._cancel(segment)
            self._segments.clear()
            start, end = self.planned
            self._end = end if start <= pos < end else self.size
            self._run_start = pos
            self._run_cached = 0
            if not self._schedule(pos, self._plan.first):
                return None
        self._top_up(pos)
        return self._segments[0]

    def _schedule(self, start: int, length: int) -> bool:
        """A segment from ``start`` of up to ``length`` bytes, as much as the memory budget
        gives (False: none): from the cache when it holds them, else fetched."""
        cached = self._cache.find(self._key, start) if self._cache is not None else None
        end = min(start + length, self._end)
        if cached is not None:
            piece_start, data = cached
            end = min(piece_start + len(data), self._end)
            if self._memory is not None:
                # A copy of what is needed now: a view would keep the whole piece alive after
                # the cache let go of it, outside the budget.
                end = min(end, start + max(length, self._plan.first))
        held = 0
        if self._memory is not None:
            held = self._memory.take(
                end - start, least=min(MIN_SEGMENT, end - start), holder=STREAMS
            )
            if not held:
                return False
            end = start + held
        if cached is not None:
            with memoryview(data) as view:
                piece = view[start - piece_start : end - piece_start]
                copy = bytes(piece) if self._memory is not None else piece
            self._segments.append(_Segment(start, end, copy, held=held))
            self._run_cached += end - start
            if self._cache is not None:
                self._cache.hits += end - start
            return True
        self._segments.append(_Segment(start, end, held=held))
        self._cond.notify_all()
        return True

    def _top_up(self, pos: int) -> None:
        # The read-ahead grows with what the caller has read from the CDN since its last seek
        # (a probe of a header costs little; a re-read served by the cache costs nothing
        # beyond it), up to the plan's bound.
        plan = self._plan
        from_cdn = max(0, pos - self._run_start - self._run_cached)
        if self._run_cached and not from_cdn:
            ahead = plan.first  # all of it came from the cache so far
        else:
            ahead = min(plan.ahead, max(plan.first + plan.size, 2 * from_cdn))
        size = self._segment_size
        if self._memory is not None:
            # Its equal part of the budget: the segment being read and what is ahead of it.
            share = self._memory.share(plan.ahead + MAX_SEGMENT)
            size = min(size, share // 2)
            ahead = min(ahead, share - size)
        while True:
            last = self._segments[-1]
            if last.end >= self._end or last.end - pos >= ahead:
                break
            # After bytes the cache held, a small segment first: the caller may stop there.
            if not self._schedule(last.end, plan.first if last.from_cache else size):
                break  # the memory budget is short: fewer segments ahead
        waiting = sum(1 for s in self._segments if not s.taken)
        for _ in range(min(self.workers - self._working, waiting)):
            self._working += 1  # counted here, under the lock, until the worker ends
            threading.Thread(target=self._work, name=f"segments {self.name}", daemon=True).start()

    def _let_go(self, segment: _Segment) -> None:
        self._cancel(segment)

    def _cancel(self, segment: _Segment) -> None:
        """Let go of ``segment`` (lock held): it is not needed any more."""
        if not segment.done:
            segment.cancelled = True
            self._cut(segment)
        self._keep(segment)
        segment.dropped = True
        if not segment.filling:
            self._give_back(segment)

    def _give_back(self, segment: _Segment) -> None:
        """The segment's bytes, no longer held by the reader or a worker, off the budget."""
        if self._memory is not None and segment.held:
            self._memory.give_back(segment.held, holder=STREAMS)
            segment.held = 0

    def _keep(self, segment: _Segment) -> None:
        """Put what the segment fetched into the cache (again when more arrived since)."""
        if self._cache is not None and segment.fetched and segment.got > segment.kept:
            segment.kept = segment.got
            # A finished segment is written no more (``done`` is set under the lock held here,
            # after its last byte), nor are the bytes it got (a worker writes only after them):
            # the cache takes them as they are. Copying them made a second 32 MiB at each
            # hand-over of a fast stream, the top of the gateway's RSS.
            data = segment.data if segment.done else memoryview(segment.data)[: segment.got]
            self._cache.keep(self._key, segment.start, data, seek=self._run_start)

    # ------------------------------------------------------------------ workers
    def _work(self) -> None:
        while True:
            with self._cond:
                segment = next((s for s in self._segments if not s.taken), None)
                if segment is None or self._closing:
                    self._working -= 1
                    return
                segment.taken = segment.filling = True
            try:
                self._fetch(segment)
            except BaseException as exc:
                # Whatever went wrong, the caller hears of it instead of waiting for ever.
                self._fail(segment, exc)
                with self._cond:
                    self._working -= 1
                    self._filled(segment)
                log.exception("segment %d-%d of %r failed", segment.start, segment.end, self.name)
                return
            with self._cond:
                # Done, or cut by a seek or a close: what came is worth keeping either way.
                self._keep(segment)
                self._filled(segment)
                self._cond.notify_all()

    def _filled(self, segment: _Segment) -> None:
        """A worker is done with ``segment`` (lock held)."""
        segment.filling = False
        if segment.dropped:
            self._give_back(segment)

    def _fetch(self, segment: _Segment) -> None:
        """Fill ``segment`` from the CDN, resuming where it was cut."""
        attempts, began, busy_since = 0, time.monotonic(), None
        while not segment.cancelled and segment.filled < segment.end:
            if not self._take_connection(segment):
                return
            try:
                self._fill(segment)
                busy_since = None
            except _Busy:
                # The CDN counts more connections than the budget thought: the budget is
                # lower now; wait a little and ask again, for a while.
                busy_since = busy_since or time.monotonic()
                if CDN_BUSY.exhausted(0, time.monotonic() - busy_since):
                    self._fail(segment, StreamGone("the download server stays busy", 0))
                    return
                CDN_BUSY.pause(1)
            except (*STREAM_ERRORS, StreamGone) as exc:
                if segment.cancelled or self._stopping():
                    return
                attempts += 1
                if isinstance(exc, StreamGone) or self._resumes.exhausted(
                    attempts, time.monotonic() - began
                ):
                    self._fail(segment, exc)
                    return
                log.info(
                    "segment %d-%d of %r interrupted at byte %d (%s); resuming",
                    segment.start,
                    segment.end,
                    self.name,
                    segment.filled,
                    described(exc),
                )
            finally:
                self._give_back_connection()
        with self._cond:
            segment.done = segment.filled >= segment.end
            self._cond.notify_all()

    def _fail(self, segment: _Segment, exc: BaseException) -> None:
        with self._cond:
            segment.failure = self._gone(segment, exc)
            self._cond.notify_all()

    def _take_connection(self, segment: _Segment) -> bool:
        def give_up() -> bool:
            return segment.cancelled or self._closing or self._stopping()

        if self._link_budget is not None and not self._link_budget.acquire(give_up):
            return False
        if not self._budget.acquire(give_up):
            if self._link_budget is not None:
                self._link_budget.release()
            return False
        return True

    def _give_back_connection(self) -> None:
        self._budget.release()
        if self._link_budget is not None:
            self._link_budget.release()

    def _fill(self, segment: _Segment) -> None:
        """One ranged request for the rest of ``segment``. A stale link is replaced once: by
        the link the mount holds now when another segment has renewed it, else by a fresh one."""
        used = self.link(False)
        resp = self._get(used, segment.filled, segment.end)
        answer = cdn_answer(resp.status_code)
        if answer is CdnAnswer.STALE_LINK:
            resp.close()
            current = self.link(False)
            fresh = current if current.url != used.url else self.link(True)
            resp = self._get(fresh, segment.filled, segment.end)
            answer = cdn_answer(resp.status_code)
        if answer is CdnAnswer.BUSY:
            resp.close()
            for budget in (self._link_budget, self._budget):
                if budget is not None:
                    budget.refused()
            raise _Busy()
        if answer is not CdnAnswer.BYTES:
            resp.close()
            raise StreamGone(
                f"the download server answered {resp.status_code} for a ranged read",
                self.delivered,
            )
        segment.response = resp
        try:
            if segment.cancelled:
                return
            began, got = time.monotonic(), 0
            while segment.filled < segment.end and not segment.cancelled:
                # What has arrived, up to READ_MOST: the caller sees bytes as they come.
                chunk = resp.raw.read1(
                    min(READ_MOST, segment.end - segment.filled), decode_content=False
                )
                if not chunk:
                    raise _ClosedEarly("the download server closed early")
                count = len(chunk)
                got += count
                with self._cond:
                    segment.data[segment.got : segment.got + count] = chunk
                    segment.got += count
                    segment.fetched += count
                    self.fetched += count
                    self._cond.notify_all()
            elapsed = time.monotonic() - began
            if got >= 256 * KIB and elapsed > 0:
                self.rate = got / elapsed
                if self.rate >= self._plan.fast:
                    self._segment_size = min(2 * self._segment_size, MAX_SEGMENT)
        finally:
            segment.response = None
            resp.close()

    def _gone(self, segment: _Segment, exc: BaseException) -> StreamGone:
        return StreamGone(
            f"giving up on {self.name!r} at byte {segment.filled} ({described(exc)})",
            self.delivered,
        )

    # ------------------------------------------------------------------ stopping
    def _stopped(self) -> None:
        """From the stopping thread: end every request in flight."""
        with self._cond:
            for segment in self._segments:
                segment.cancelled = True
                self._cut(segment)
            self._cond.notify_all()

    @staticmethod
    def _cut(segment: _Segment) -> None:
        resp = segment.response
        sock = getattr(getattr(resp.raw, "connection", None), "sock", None) if resp else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


#: PikPak serves about this many connections per signed link at once.
LINK_CONNECTIONS = 8
#: ... and about 20 per account: a budget below that leaves room for other clients.
ACCOUNT_CONNECTIONS = 16
#: Connections per proxied stream (the ``stream_connections`` mount option; see BENCHMARKS.md).
STREAM_CONNECTIONS = 8
#: Bytes of recently read pieces kept for the streams of the same file (``stream_cache``).
STREAM_CACHE = 64 * MIB


class Streams:
    """What the segmented streams of one account share: its connection budget, a budget
    per file (every stream of a file reads the same signed link), and the block cache; and
    with every other account, the gateway's ``memory`` budget."""

    def __init__(
        self,
        *,
        connections: int = ACCOUNT_CONNECTIONS,
        cache: BlockCache | None = None,
        memory: MemoryBudget | None = None,
    ) -> None:
        self.budget = ConnectionBudget(connections)
        self.cache = cache
        self.memory = memory
        # How many connections the last stream ended up wanting: the next one starts there
        # (a player's every seek is a new request; the CDN's speed has not changed).
        self.workers = 1
        # What one connection to the CDN gave, as the last stream measured it (0: unknown).
        self.rate = 0.0
        self._links: dict[str, tuple[ConnectionBudget, int]] = {}
        self._lock = threading.Lock()

    def reader(
        self,
        http: requests.Session,
        size: int,
        link: Callable[[bool], Link],
        *,
        key: str,
        plan: SegmentPlan = SegmentPlan(),
        start: int = 0,
        end: int | None = None,
        name: str = "",
        stop: Stopping | None = None,
        host_failed: Callable[[str], None] | None = None,
    ) -> SegmentedReader:
        """A segmented reader of the file ``key`` (its id and content hash)."""
        with self._lock:
            budget, users = self._links.get(key, (None, 0))
            if budget is None:
                budget = ConnectionBudget(min(LINK_CONNECTIONS, self.budget.most))
            self._links[key] = (budget, users + 1)
        reader = SegmentedReader(
            http,
            size,
            link,
            budget=self.budget,
            link_budget=budget,
            cache=self.cache,
            key=key,
            plan=plan,
            start=start,
            end=end,
            name=name,
            stop=stop,
            workers=self.workers,
            host_failed=host_failed,
            memory=self.memory,
        )
        reader.on_close = lambda: self._done(key, reader.workers, reader.rate)
        return reader

    def open(
        self,
        http: requests.Session,
        size: int,
        link: Callable[[bool], Link],
        *,
        key: str,
        plan: SegmentPlan,
        start: int = 0,
        end: int | None = None,
        name: str = "",
        stop: Stopping | None = None,
        host_failed: Callable[[str], None] | None = None,
    ) -> ByteReader:
        """A reader of the file ``key`` as the CDN has lately behaved: by segments when it
        throttles (or is not known yet) and when the cache holds the start; else through one
        connection that goes on by segments if it turns out throttled."""

        def segmented(at: int = start) -> SegmentedReader:
            return self.reader(
                http, size, link, key=key, plan=plan, start=at, end=end, name=name, stop=stop,
                host_failed=host_failed,
            )  # fmt: skip

        cache = self.cache
        if self.rate < plan.fast or (cache is not None and cache.find(key, start)):
            return segmented()
        one = LinkReader(
            http, size, link, start=start, end=end, name=name, stop=stop, host_failed=host_failed
        )
        one.on_close = lambda done: self.measured(done.rate)

        def keep(at: int, data: bytes | bytearray) -> None:
            assert cache is not None
            cache.keep(key, at, data, seek=at)  # where the stream began: a player's seek

        return OneConnectionFirst(
            one,
            segmented,
            fast=plan.fast,
            measured=self.measured,
            keep=keep if cache is not None else None,
            memory=self.memory,
        )

    def measured(self, rate: float) -> None:
        """What one connection gave, as a stream measured it (0: too short to say)."""
        if rate:
            self.rate = rate

    def _done(self, key: str, workers: int, rate: float) -> None:
        self.measured(rate)
        with self._lock:
            self.workers = workers
            budget, users = self._links[key]
            if users > 1:
                self._links[key] = (budget, users - 1)
            else:
                del self._links[key]


#: A stream read through one connection is measured after this much; a throttled CDN then
#: has the rest read by segments.
MEASURE_AFTER = 4 * MIB


class OneConnectionFirst(ByteReader):
    """A stream read through one connection (``one``) while that is fast, and by segments
    (``segmented(pos)``, a reader at ``pos``) from the moment it turns out throttled: after
    :data:`MEASURE_AFTER` bytes below ``fast`` bytes per second, it goes on by segments at
    the byte it had reached; ``measured(rate)`` hears what one connection gave.

    The first :data:`MEASURE_AFTER` bytes it reads from where it starts go to ``keep(start,
    data)`` (the block cache): a player's header and index reads come back again and again.
    They are held within ``memory`` (the gateway's budget), and not kept when it is short."""

    def __init__(
        self,
        one: LinkReader,
        segmented: Callable[[int], io.RawIOBase],
        *,
        fast: float,
        measured: Callable[[float], None],
        keep: Callable[[int, bytes | bytearray], None] | None = None,
        memory: MemoryBudget | None = None,
    ) -> None:
        super().__init__()
        self._memory = memory
        self._held = 0  # of the memory budget, for the head
        self._current: io.RawIOBase = one
        self._one: LinkReader | None = one
        self._segmented = segmented
        self._fast = fast
        self._measured = measured
        self._keep = keep
        # What was read from ``_head_at`` on, in a row: ``_head_len`` bytes of a buffer made
        # at its full size (growing it as reads came copied it again and again).
        self._head: bytearray | mmap.mmap | None = None
        self._head_at = self._head_len = 0
        self.delivered = 0  # bytes handed to the caller, by either reader

    def tell(self) -> int:
        return self._current.tell()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        at = self._current.seek(offset, whence)
        if self._head is not None and at != self._head_at + self._head_len:
            self._keep_head()  # a seek ends the run of bytes kept
        return at

    def read(self, size: int = -1) -> bytes:
        one = self._one
        if one is not None and one.delivered >= MEASURE_AFTER and 0 < one.rate < self._fast:
            log.info(
                "stream of %r: one connection gives %.1f MB/s; reading on by segments",
                one.name,
                one.rate / 1e6,
            )
            self._measured(one.rate)
            pos = one.tell()
            self._one = None
            one.on_close = None  # measured already
            one.close()
            self._current = self._segmented(pos)
            self._current.seek(pos)
        at = self._current.tell()
        try:
            data = self._current.read(size)
        except StreamGone as exc:
            # The caller decides between an error answer and a short body by what went out.
            raise StreamGone(str(exc), self.delivered) from None
        self.delivered += len(data)
        if self._keep is not None and self.delivered - len(data) < MEASURE_AFTER:
            if self._head is None:
                if self._memory is not None:
                    self._held = self._memory.take(MEASURE_AFTER, holder=STREAMS)
                    if not self._held:
                        self._keep = None  # no room: the head is not kept this time
                        return data
                self._head, self._head_at, self._head_len = buffer(MEASURE_AFTER), at, 0
            room = min(len(data), MEASURE_AFTER - self._head_len)
            with memoryview(data) as view:
                self._head[self._head_len : self._head_len + room] = view[:room]
            self._head_len += room
            if self._head_len >= MEASURE_AFTER:
                self._keep_head()
        return data

    def _keep_head(self) -> None:
        head, self._head = self._head, None
        if head is not None and self._head_len and self._keep is not None:
            # Nobody writes it after: the cache takes it as it is.
            whole = self._head_len == len(head)
            self._keep(self._head_at, head if whole else memoryview(head)[: self._head_len])
        self._keep = None  # once per stream
        if self._memory is not None and self._held:
            self._memory.give_back(
                self._held, holder=STREAMS
            )  # the cache holds it within the budget now
            self._held = 0

    def close(self) -> None:
        if not self.closed:
            self._keep_head()
            self._current.close()
            hand_back_freed_memory()
        super().close()
