"""The mount's writes against the emulator over HTTP: what PikPak holds afterwards, and what
the mount's next listing shows (the writer's invalidations)."""

from __future__ import annotations

import pytest

from pikdav.vfs.errors import NameTaken
from pikdav.vfs.parts import Writing
from tests.support.pikpak_raw import control
from tests.vfs.conftest import USER


def stored(emulator) -> list[dict]:
    """Every item PikPak holds for alice, trashed ones too (two may share a path)."""
    return control(emulator.base_url, f"tree?username={USER}", method="GET")["files"]


def put(mount, folder, name: str, data: bytes):
    body = mount.receive(len(data), exact=True)
    body.write(data)
    return mount.store(folder, name, body, mount.child(folder, name))


def read(mount, entry) -> bytes:
    with mount.open(entry) as reader:
        return reader.read()


def test_a_replaced_file_shows_the_new_bytes_and_the_old_version_is_in_the_trash(
    emulator, make_mount
):
    mount = make_mount()
    put(mount, mount.root, "notes.txt", b"first version")
    put(mount, mount.root, "notes.txt", b"second version, longer")
    entry = mount.resolve(["notes.txt"])
    assert entry is not None and entry.size == len(b"second version, longer")
    assert read(mount, entry) == b"second version, longer"
    rows = [r for r in stored(emulator) if r["path"] == "notes.txt"]
    assert sorted((r["size"], r["trashed"]) for r in rows) == [(13, True), (22, False)]
    assert not any(".pikdav-" in r["path"] for r in stored(emulator))  # no hidden leftovers


def test_without_the_trash_a_replaced_version_is_gone_for_good(emulator, make_mount):
    mount = make_mount(writing=Writing(use_trash=False))
    put(mount, mount.root, "a.txt", b"old")
    put(mount, mount.root, "a.txt", b"new!")
    rows = [r for r in stored(emulator) if r["path"] == "a.txt"]
    assert [(r["size"], r["trashed"]) for r in rows] == [(4, False)]


def test_a_folder_name_that_is_taken_is_refused_and_nothing_changes(emulator, make_mount):
    mount = make_mount()
    mount.mkdir(mount.root, "Films")
    with pytest.raises(NameTaken):
        mount.mkdir(mount.root, "Films")
    assert [e.name for e in mount.children(mount.root)] == ["Films"]


def test_move_over_an_existing_file_and_copy_of_a_folder(emulator, make_mount):
    mount = make_mount()
    docs = mount.mkdir(mount.root, "Docs")
    put(mount, docs, "a.txt", b"A")
    put(mount, docs, "b.txt", b"B")
    a, b = mount.child(docs, "a.txt"), mount.child(docs, "b.txt")
    mount.move(a, docs, docs, "b.txt", b)  # MOVE with Overwrite: T
    assert [(e.name, e.size) for e in mount.children(docs)] == [("b.txt", 1)]
    assert read(mount, mount.child(docs, "b.txt")) == b"A"
    mount.copy(docs, mount.root, "Docs copy", None, recursive=True)
    copied = mount.resolve(["Docs copy", "b.txt"])
    assert copied is not None and read(mount, copied) == b"A"
    assert read(mount, mount.resolve(["Docs", "b.txt"])) == b"A"  # the source stays


def test_a_deleted_folder_leaves_the_listing_at_once(emulator, make_mount):
    mount = make_mount()
    folder = mount.mkdir(mount.root, "Old")
    put(mount, folder, "x.bin", b"x")
    assert [e.name for e in mount.children(mount.root)] == ["Old"]
    mount.delete(folder, mount.root)
    assert mount.children(mount.root) == () and mount.resolve(["Old", "x.bin"]) is None
    assert [r["trashed"] for r in stored(emulator) if r["path"] == "Old"] == [True]
