"""Waiting (background) uploads as the mount holds them: listed and readable from local disk
at once, retried until PikPak has them, and what a restart finds in their folder."""

from __future__ import annotations

import json
import math
import os
import time

import pytest

from pikdav.pikpak.gcid import gcid_of_bytes
from pikdav.pikpak.retry import RetryPolicy
from pikdav.vfs.parts import Writing
from pikdav.vfs.pending import PendingUploads
from tests.support.pikpak_raw import control
from tests.vfs.conftest import USER

DATA = os.urandom(300_000)


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    monkeypatch.setattr(
        PendingUploads, "retry", RetryPolicy(attempts=5, seconds=math.inf, backoff=0.05, jitter=0)
    )


def put(mount, name: str, data: bytes):
    body = mount.receive(len(data), exact=True)
    body.write(data)
    return mount.store(mount.root, name, body, mount.child(mount.root, name))


def test_a_waiting_upload_is_listed_and_read_from_disk_until_pikpak_has_it(
    emulator, make_mount, tmp_path
):
    # The object store fails the first two tries: the upload must wait and be retried.
    control(
        emulator.base_url,
        "faults",
        {"path": "pikpak-emulator", "method": "PUT", "status": 500, "times": 2},
    )
    mount = make_mount(writing=Writing(pending=PendingUploads(tmp_path / "uploads")))
    entry = put(mount, "film.mkv", DATA)
    assert entry.uploading and entry.size == len(DATA)
    listed = {e.name: e for e in mount.children(mount.root)}
    assert listed["film.mkv"].uploading and listed["film.mkv"].size == len(DATA)
    with mount.open(listed["film.mkv"]) as local:
        assert local.read() == DATA
    deadline = time.time() + 30
    while not mount.pending.idle():
        assert time.time() < deadline, "the upload never finished"
        time.sleep(0.05)
    stored = mount.resolve(["film.mkv"])
    assert stored is not None and not stored.uploading
    with mount.open(stored) as remote:
        assert remote.read() == DATA  # now from PikPak's download server
    rows = control(emulator.base_url, f"tree?username={USER}", method="GET")["files"]
    assert [(r["path"], r["size"]) for r in rows] == [("film.mkv", len(DATA))]
    assert list((tmp_path / "uploads").iterdir()) == []  # journal and data are gone


def test_a_restart_drops_what_was_never_answered_and_keeps_what_was(tmp_path):
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    journal = {"id": "a1", "folder_id": "", "name": "kept.bin", "size": 4, "gcid": "G" * 40}
    (uploads / "a1.json").write_text(json.dumps(journal | {"created": 1.0}))
    (uploads / "a1.data").write_bytes(b"kept")
    (uploads / "pikdav-put-x1y2").write_bytes(b"a body still arriving")
    (uploads / ".journal-z3").write_text("{")  # a journal being written
    (uploads / "b2.data").write_bytes(b"renamed, journal never written")
    waiting = PendingUploads(uploads)
    assert sorted(p.name for p in uploads.iterdir()) == ["a1.data", "a1.json"]
    assert [e.name for e in waiting.in_folder("").values()] == ["kept.bin"]


def test_a_mount_made_read_only_still_finishes_what_an_earlier_run_acknowledged(
    emulator, make_mount, tmp_path
):
    # An upload acknowledged (201) by an earlier, writable run waits on disk; the mount is
    # read-only now: clients may change nothing, but the acknowledged file still goes up.
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    journal = {"id": "a1", "folder_id": "", "name": "kept.bin", "size": len(DATA)}
    (uploads / "a1.data").write_bytes(DATA)
    journal |= {"gcid": gcid_of_bytes(DATA), "created": 1.0}
    (uploads / "a1.json").write_text(json.dumps(journal))
    mount = make_mount(writing=Writing(pending=PendingUploads(uploads)), read_only=True)
    assert mount.read_only
    deadline = time.time() + 30
    while not mount.pending.idle():
        assert time.time() < deadline, "the acknowledged upload never went up"
        time.sleep(0.05)
    rows = control(emulator.base_url, f"tree?username={USER}", method="GET")["files"]
    assert [(r["path"], r["size"]) for r in rows] == [("kept.bin", len(DATA))]
    stored = mount.resolve(["kept.bin"])
    assert stored is not None and not stored.uploading
    with mount.open(stored) as remote:
        assert remote.read() == DATA
