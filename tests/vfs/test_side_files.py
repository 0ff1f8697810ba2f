"""Finder's side files kept on the gateway: bounded, and following their files on MOVE/DELETE."""

from __future__ import annotations

from pikdav.vfs.parts import Writing
from pikdav.vfs.sidefiles import STORE, SideStore


def test_the_store_is_bounded_and_drops_the_least_recently_used_first():
    store = SideStore(max_bytes=10)
    store.put("/a/._one", b"1234")
    store.put("/a/._two", b"1234")
    assert store.get("/a/._one") is not None  # now the most recently used
    store.put("/a/._three", b"1234")  # 12 bytes: one must go
    assert store.get("/a/._two") is None
    assert store.get("/a/._one").content == b"1234" and store.get("/a/._three") is not None


def test_side_files_follow_a_moved_folder_and_go_with_a_deleted_one():
    store = SideStore()
    store.put("/m/Films/._a.mkv", b"A")
    store.put("/m/Films/Sub/.DS_Store", b"D")
    store.put("/m/Filmsextra/._b", b"B")  # a sibling whose name starts the same
    store.move("/m/Films", "/m/Movies")
    assert store.get("/m/Films/._a.mkv") is None
    assert store.get("/m/Movies/._a.mkv").content == b"A"
    assert store.get("/m/Movies/Sub/.DS_Store").content == b"D"
    assert store.get("/m/Filmsextra/._b").content == b"B"
    store.move("/m/Movies", "/m/Copy", keep_source=True)
    assert store.get("/m/Movies/._a.mkv") and store.get("/m/Copy/._a.mkv")
    store.delete("/m/Movies")
    assert store.get("/m/Movies/._a.mkv") is None and store.get("/m/Movies/Sub/.DS_Store") is None
    assert store.get("/m/Copy/Sub/.DS_Store").content == b"D"


def test_only_finder_metadata_stays_local_and_only_when_the_mount_says_so(make_mount):
    local, stored = make_mount(), make_mount(writing=Writing(finder_metadata=STORE))
    for name in ("._film.mkv", ".DS_Store"):
        assert local.keeps_locally(name) and not stored.keeps_locally(name)
    assert not local.keeps_locally("film.mkv") and not local.keeps_locally("desktop.ini")
