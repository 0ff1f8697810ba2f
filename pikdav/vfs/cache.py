"""The caches: folder listings and download links, with invalidation verbs named after the
events that call them. Both hold their entries within the gateway's memory budget when given
one (:class:`~pikdav.pikpak.memory.MemoryBudget`): when it is short, the oldest entries make room,
and an entry that still does not fit is answered but not kept."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from cachetools import LRUCache

from pikdav.pikpak.memory import LISTINGS, MemoryBudget
from pikdav.pikpak.types import Link

T = TypeVar("T")


@dataclass(frozen=True)
class _Stamped(Generic[T]):
    value: T
    expires_at: float


#: About what one cached link weighs in memory (its signed URL and fields).
LINK_BYTES = 1024


class _Weighed(LRUCache):
    """An LRU map whose entries take their weight from ``memory`` while they are in it."""

    def __init__(self, maxsize: int, memory: MemoryBudget, weigh: Callable[[object], int]):
        super().__init__(maxsize)
        self._memory = memory
        self._weigh = weigh
        self._held: dict[object, int] = {}

    def __setitem__(self, key: object, value: _Stamped) -> None:
        if key in self:
            del self[key]
        granted = self._memory.take(max(1, self._weigh(value.value)), holder=LISTINGS)
        while not granted and len(self):
            self.popitem()  # the oldest make room
            granted = self._memory.take(max(1, self._weigh(value.value)), holder=LISTINGS)
        if not granted:
            return  # no room even alone: answered, not kept
        super().__setitem__(key, value)
        self._held[key] = granted

    def __delitem__(self, key: object) -> None:
        super().__delitem__(key)
        self._memory.give_back(self._held.pop(key, 0), holder=LISTINGS)


class TtlCache(Generic[T]):
    """A bounded, thread-safe map whose entries expire; ``fetch`` is single-flight per key,
    so a burst of requests for a cold folder makes one upstream listing, not one each.

    A load that was under way when the key was invalidated (a write happened meanwhile) is
    returned to its caller but not cached: it may predate the write.

    ``memory`` and ``weigh(value)``: entries hold their weight in bytes of the gateway's
    memory budget."""

    def __init__(
        self,
        maxsize: int,
        clock: Callable[[], float] = time.monotonic,
        *,
        memory: MemoryBudget | None = None,
        weigh: Callable[[T], int] | None = None,
    ) -> None:
        self._items: LRUCache[str, _Stamped[T]] = (
            _Weighed(maxsize, memory, weigh) if memory is not None and weigh is not None
            else LRUCache(maxsize)
        )  # fmt: skip
        self._lock = threading.Lock()
        self._inflight: dict[str, threading.Lock] = {}
        self._generation: dict[str, int] = {}
        self._epoch = 0
        self._clock = clock
        self.hits = 0  # fetches answered from the cache (read by the metrics)
        self.misses = 0  # fetches that loaded

    def get(self, key: str) -> T | None:
        with self._lock:
            item = self._items.get(key)
            if item is None or item.expires_at <= self._clock():
                return None
            return item.value

    def insert(self, key: str, value: T, ttl: float) -> None:
        with self._lock:
            self._items[key] = _Stamped(value, self._clock() + ttl)

    def _stamp(self, key: str) -> tuple[int, int]:
        return self._epoch, self._generation.get(key, 0)

    def stamp(self, key: str) -> tuple[int, int]:
        """What changes each time ``key`` is invalidated: a value read elsewhere (on disk)
        before an invalidation is kept only while its stamp is the same."""
        with self._lock:
            return self._stamp(key)

    def insert_unless_changed(self, key: str, value: T, ttl: float, stamp: tuple[int, int]) -> bool:
        """``insert``, unless ``key`` was invalidated since ``stamp`` was taken."""
        with self._lock:
            if self._stamp(key) != stamp:
                return False
            self._items[key] = _Stamped(value, self._clock() + ttl)
            return True

    def fetch(self, key: str, load: Callable[[], tuple[T, float]]) -> T:
        """The cached value, or ``load()`` → (value, ttl) once for all concurrent callers."""
        value = self.get(key)
        if value is not None:
            self.hits += 1
            return value
        with self._lock:
            gate = self._inflight.setdefault(key, threading.Lock())
        with gate:
            value = self.get(key)
            if value is not None:
                self.hits += 1  # another caller's load: this one cost nothing upstream
                return value
            with self._lock:
                before = self._stamp(key)
                self.misses += 1
            try:
                value, ttl = load()
                with self._lock:
                    if self._stamp(key) == before:
                        self._items[key] = _Stamped(value, self._clock() + ttl)
                return value
            finally:
                with self._lock:
                    self._inflight.pop(key, None)

    def invalidate(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)
            self._generation[key] = self._generation.get(key, 0) + 1
            if len(self._generation) > 4 * (self._items.maxsize or 1):
                self._generation.clear()  # bounded memory; the epoch keeps loads honest
                self._epoch += 1

    def invalidate_all(self) -> None:
        with self._lock:
            self._items.clear()
            self._generation.clear()
            self._epoch += 1


class LinkCache:
    """Download links, kept for as long as :meth:`Link.usable_for` says."""

    def __init__(self, maxsize: int = 10_000, memory: MemoryBudget | None = None) -> None:
        self._cache: TtlCache[Link] = TtlCache(
            maxsize, clock=time.time, memory=memory, weigh=lambda link: LINK_BYTES
        )

    def fetch(self, file_id: str, load: Callable[[], Link]) -> Link:
        def timed() -> tuple[Link, float]:
            link = load()
            return link, link.usable_for()

        return self._cache.fetch(file_id, timed)

    def cached(self, file_id: str) -> Link | None:
        """The link kept for ``file_id``, without asking PikPak (None: none kept)."""
        return self._cache.get(file_id)

    def forget(self, file_id: str) -> None:
        self._cache.invalidate(file_id)

    @property
    def hits(self) -> int:
        return self._cache.hits

    @property
    def misses(self) -> int:
        return self._cache.misses

    def forget_all(self) -> None:
        self._cache.invalidate_all()
