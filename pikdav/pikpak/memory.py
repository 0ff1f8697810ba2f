"""One memory budget for what the gateway holds on purpose: the read-ahead of every stream, the
block cache and the listing caches.

A holder asks before it holds (:meth:`MemoryBudget.take`) and gives back when it lets go. When
the budget is reached, what is held for later makes room first: a holder registered with
:meth:`MemoryBudget.reclaim_with` (the block cache) frees the bytes asked for, least recently
used first. What still does not fit is refused, and the holder does with less — a smaller or no
segment ahead, one piece fewer in a cache — instead of growing. Streams share it fairly:
:meth:`MemoryBudget.share` is what one of them may hold ahead while others stream too.

The budget counts what its holders asked for, not the process's RSS: the interpreter, threads'
stacks, sockets' buffers and the bytes of each read on their way to a client are outside it.
"""

from __future__ import annotations

import mmap
import threading
from collections.abc import Callable

from .retry import pause_for

KIB, MIB = 1 << 10, 1 << 20

#: What a gateway holds on purpose unless ``server.memory_budget`` says otherwise: room for a
#: household's streams and a block cache on a small NAS or single-board computer (with 128
#: MiB, 50 clients' peak was near 300 MiB and one 1 GiB GET's 60 MiB above rclone's:
#: BENCHMARKS.md, "memory under 50 clients").
MEMORY_BUDGET = 64 * MIB

#: Who holds bytes of the budget (shown apart on the status page and in /metrics).
STREAMS, BLOCK_CACHE, LISTINGS = "streams", "block cache", "listings"
DISK_WRITES = "disk writes"  # blocks waiting for the disk cache's writer


class MemoryBudget:
    """``limit`` bytes in all; ``in_use`` now, ``peak`` the most ever held; by holder,
    ``held`` now and ``refusals``: how many times it was given less than it asked for."""

    def __init__(self, limit: int = MEMORY_BUDGET) -> None:
        if limit < 1:
            raise ValueError("a memory budget needs at least one byte")
        self.limit = limit
        self.in_use = 0
        self.peak = 0
        self.held: dict[str, int] = {STREAMS: 0, BLOCK_CACHE: 0, LISTINGS: 0, DISK_WRITES: 0}
        self.refusals: dict[str, int] = dict.fromkeys(self.held, 0)
        self.streams = 0  # streams holding read-ahead now (see share)
        self._reclaimers: list[Callable[[int], None]] = []
        self._lock = threading.Lock()

    def reclaim_with(self, reclaim: Callable[[int], None]) -> None:
        """``reclaim(n)`` frees about ``n`` bytes it holds (giving them back here) when a
        holder wants more than is free; it must not call :meth:`take` with ``reclaim``."""
        self._reclaimers.append(reclaim)

    @property
    def refused(self) -> int:
        """Times any holder was given less than it asked for."""
        return sum(self.refusals.values())

    def take(
        self, want: int, least: int | None = None, *, holder: str, reclaim: bool = True
    ) -> int:
        """Up to ``want`` bytes for ``holder``, at least ``least`` (default: all of ``want``),
        else nothing (0). ``reclaim``: let the reclaimers free room first when it is short."""
        least = want if least is None else min(least, want)
        if want <= 0:
            return 0
        if reclaim and self._reclaimers:
            with self._lock:
                short = want - (self.limit - self.in_use)
            if short > 0:
                for reclaimer in self._reclaimers:
                    reclaimer(short)  # outside the lock: it gives back through it
        with self._lock:
            granted = min(want, self.limit - self.in_use)
            if granted < want:
                self.refusals[holder] = self.refusals.get(holder, 0) + 1
            if granted < least:
                return 0
            self.in_use += granted
            self.held[holder] = self.held.get(holder, 0) + granted
            self.peak = max(self.peak, self.in_use)
            return granted

    def give_back(self, count: int, *, holder: str) -> None:
        if count > 0:
            with self._lock:
                self.in_use -= count
                self.held[holder] -= count

    def share(self, most: int) -> int:
        """What one stream may hold, at most ``most``: an equal part of the budget for each
        stream running now (the caches make room for them)."""
        with self._lock:
            return max(128 * KIB, min(most, self.limit // max(1, self.streams)))

    def stream_began(self) -> None:
        with self._lock:
            self.streams += 1

    def stream_ended(self) -> None:
        with self._lock:
            self.streams -= 1


#: Buffers at least this large get pages of their own (see :func:`buffer`).
OWN_PAGES = 128 * KIB


def buffer(size: int) -> bytearray | mmap.mmap:
    """A writable buffer of ``size`` zero bytes for a stream's segment or a cached piece.

    One of :data:`OWN_PAGES` or more is an anonymous mapping of its own, not a block of
    glibc's heaps: its pages are given back to the system the moment it is freed, and only
    the pages written count in the RSS (a segment cut short by a seek costs what it got).
    Taken from the heaps, each freed segment raised glibc's mmap threshold to its size (up
    to 32 MiB), after which every buffer below that size came from the heaps, which grew
    under 50 clients to 3x what was held (BENCHMARKS.md: "memory under 50 clients")."""
    if size < OWN_PAGES:
        return bytearray(size)
    return mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)


class _Trimmer:
    """Hands memory that was freed back to the system, a second after a stream let go of
    its buffers (once for many: a burst of ends costs one trim).

    glibc keeps what Python frees in its heaps for reuse; the buffers of streams are between
    a few KiB and a few MiB, freed in many threads, and the heaps they leave behind stay in
    the RSS long after the streams ended (measured in BENCHMARKS.md: "Memory under 50
    clients"). ``malloc_trim`` returns the free pages of every heap to the system."""

    def __init__(self) -> None:
        self._wanted = threading.Event()
        self._started = False
        self._lock = threading.Lock()
        self._trim: Callable[[], object] | None = None
        try:
            import ctypes

            libc = ctypes.CDLL("libc.so.6")
            trim = libc.malloc_trim
        except (OSError, AttributeError):
            return  # not glibc: nothing to hand back this way
        self._trim = lambda: trim(0)

    def soon(self) -> None:
        if self._trim is None:
            return
        self._wanted.set()
        if not self._started:
            with self._lock:
                if not self._started:
                    self._started = True
                    threading.Thread(target=self._run, name="malloc trim", daemon=True).start()

    def _run(self) -> None:
        assert self._trim is not None
        while True:
            self._wanted.wait()
            pause_for(TRIM_AFTER)  # let the rest of a burst of ends come first
            self._wanted.clear()
            self._trim()


TRIM_AFTER = 1.0  # seconds after a stream's end before freed memory is handed back
_trimmer = _Trimmer()


def hand_back_freed_memory() -> None:
    """A stream ended: hand the memory it freed back to the system, soon (see _Trimmer)."""
    _trimmer.soon()
