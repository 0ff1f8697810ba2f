"""The listing cache and name disambiguation, without a server."""

from __future__ import annotations

import threading

from pikdav.pikpak.types import File
from pikdav.vfs.cache import TtlCache
from pikdav.vfs.tree import disambiguate


def file(name: str, ident: str, created: int) -> File:
    when = float(created)  # Unix seconds, as File holds times
    return File(
        ident, name, "", False, 1, when, when, "H" * 40, "text/plain", "PHASE_TYPE_COMPLETE", False
    )


def test_clashing_names_are_numbered_oldest_first_without_hiding_real_names():
    listing = disambiguate(
        [
            file("a.txt", "2", 20),
            file("a.txt", "1", 10),
            file("a (2).txt", "3", 30),
            file(".pikdav-put-x-a.txt", "4", 40),
        ]
    )
    assert {e.name: e.id for e in listing.entries} == {
        "a.txt": "1",
        "a (3).txt": "2",
        "a (2).txt": "3",
    }


def test_a_load_that_overlaps_an_invalidation_is_not_cached():
    cache: TtlCache[str] = TtlCache(16)
    started, release = threading.Event(), threading.Event()

    def slow_load():
        started.set()
        release.wait(5)
        return "listing from before the write", 60

    result = []
    loader = threading.Thread(target=lambda: result.append(cache.fetch("folder", slow_load)))
    loader.start()
    started.wait(5)
    cache.invalidate("folder")  # a write lands while the listing is being fetched
    release.set()
    loader.join(5)
    assert result == ["listing from before the write"]  # its caller still gets an answer
    assert cache.get("folder") is None  # but the next caller fetches again
    assert cache.fetch("folder", lambda: ("fresh", 60)) == "fresh"


def test_fetch_is_single_flight():
    cache: TtlCache[int] = TtlCache(16)
    calls = []
    gate = threading.Event()

    def load():
        calls.append(1)
        gate.wait(5)
        return 42, 60

    threads = [threading.Thread(target=cache.fetch, args=("k", load)) for _ in range(20)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join(5)
    assert calls == [1] and cache.get("k") == 42
