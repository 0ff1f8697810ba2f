"""Uploads against the emulator's drive API and object store, over real HTTP."""

from __future__ import annotations

import os

import pytest
import requests

from pikdav.pikpak.drive import Drive
from pikdav.pikpak.errors import PikPakError, QuotaExceeded
from pikdav.pikpak.retry import OBJECT_STORE
from pikdav.pikpak.session import Credentials, Session
from pikdav.pikpak.tokenstore import MemoryTokenStore
from pikdav.pikpak.upload import Uploader, UploadSettings
from tests.support.pikpak_raw import account_stats, control

USER = "alice@example.com"
MIB = 1 << 20


@pytest.fixture
def drive(emulator) -> Drive:
    session = Session(
        Credentials(USER, "correct horse"),
        MemoryTokenStore(),
        user_api=emulator.base_url,
        drive_api=emulator.base_url,
    )
    return Drive(session)


def files_named(emulator, name: str) -> list[dict]:
    tree = control(emulator.base_url, f"tree?username={USER}", method="GET")["files"]
    return [row for row in tree if row["path"].split("/")[-1] == name]


@pytest.mark.parametrize("size", [0, 1, 5 * MIB + 1, 64 * MIB], ids=["0B", "1B", "5MiB+1", "64MiB"])
def test_upload_arrives_byte_identical(emulator, drive, tmp_path, size):
    data = os.urandom(size)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    uploaded = Uploader(drive).upload_file("", "f.bin", path)
    assert uploaded.complete and uploaded.size == size and uploaded.name == "f.bin"
    if size:
        got = requests.get(drive.download_link(uploaded.id).url).content
        assert got == data
    assert [f.name for f in drive.list_folder("")] == ["f.bin"]


def test_known_content_moves_no_bytes(emulator, drive, tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(os.urandom(3 * MIB))
    up = Uploader(drive)
    up.upload_file("", "a.bin", path)
    before = account_stats(emulator)
    again = up.upload_file("", "b.bin", path)
    after = account_stats(emulator)
    assert again.complete and after["objstore_bytes"] == before["objstore_bytes"]
    assert after["instant_uploads"] == before["instant_uploads"] + 1


def test_a_part_that_fails_once_is_retried(emulator, drive, tmp_path):
    data = os.urandom(12 * MIB)
    path = tmp_path / "p.bin"
    path.write_bytes(data)
    control(
        emulator.base_url,
        "faults",
        {"path": "pikpak-emulator", "method": "PUT", "status": 500, "skip": 1, "times": 1},
    )
    up = Uploader(drive, UploadSettings(cutoff=4 * MIB, part_size=4 * MIB, concurrency=1))
    uploaded = up.upload_file("", "p.bin", path)
    assert requests.get(drive.download_link(uploaded.id).url).content == data
    assert control(emulator.base_url, "faults", method="GET")["rules"][0]["fired"] == 1


def test_progress_counts_what_the_store_took_part_by_part_and_a_failed_part_not_twice(
    emulator, drive, tmp_path
):
    data = os.urandom(10 * MIB)
    path = tmp_path / "p.bin"
    path.write_bytes(data)
    control(  # the second part fails once and is sent again
        emulator.base_url,
        "faults",
        {"path": "pikpak-emulator", "method": "PUT", "status": 500, "skip": 1, "times": 1},
    )
    seen: list[int] = []
    up = Uploader(drive, UploadSettings(cutoff=4 * MIB, part_size=4 * MIB, concurrency=1))
    up.upload_file("", "p.bin", path, progress=seen.append)
    assert seen == [4 * MIB, 8 * MIB, 10 * MIB]
    small: list[int] = []
    (tmp_path / "s.bin").write_bytes(os.urandom(MIB))
    Uploader(drive).upload_file("", "small.bin", tmp_path / "s.bin", progress=small.append)
    assert small == [MIB]  # one request: counted when the store has it all
    again: list[int] = []
    Uploader(drive).upload_file("", "again.bin", path, progress=again.append)
    assert again == []  # PikPak knows the content: an instant upload sends nothing


@pytest.mark.parametrize("multipart", [False, True], ids=["single", "multipart"])
def test_a_failure_that_persists_leaves_no_file(emulator, drive, tmp_path, multipart):
    path = tmp_path / "x.bin"
    path.write_bytes(os.urandom(9 * MIB))
    control(
        emulator.base_url, "faults", {"path": "pikpak-emulator", "method": "PUT", "status": 500}
    )
    settings = UploadSettings(cutoff=4 * MIB if multipart else 64 * MIB, part_size=4 * MIB)
    with pytest.raises(PikPakError):
        Uploader(drive, settings).upload_file("", "x.bin", path)
    assert files_named(emulator, "x.bin") == []
    assert drive.list_folder("") == []


def test_expired_upload_credentials_fail_cleanly(emulator, drive, tmp_path):
    path = tmp_path / "late.bin"
    path.write_bytes(os.urandom(2 * MIB))
    control(emulator.base_url, "config", {"upload_ttl": 0})
    with pytest.raises(PikPakError, match="expired"):
        Uploader(drive).upload_file("", "late.bin", path)
    assert files_named(emulator, "late.bin") == []


def test_a_store_connection_closed_without_an_answer_is_described_not_a_crash():
    # botocore's connection errors carry `response = None`; describing one crashed the
    # background uploads' thread (AttributeError), which then uploaded nothing more.
    from botocore.exceptions import ConnectionClosedError

    from pikdav.pikpak.errors import Unreachable, object_store_error

    exc, rule = object_store_error(ConnectionClosedError(endpoint_url="http://store/x"), "store")
    assert isinstance(exc, Unreachable) and not rule.final


def test_one_bound_holds_for_a_part_botocore_retries_nothing(emulator, drive, tmp_path):
    """A part refused again and again is sent OBJECT_STORE.attempts times, not that many
    times botocore's own attempts (it was 3 x 4 = 12 requests for one part)."""
    path = tmp_path / "one-part.bin"
    path.write_bytes(os.urandom(5 * MIB))
    control(
        emulator.base_url, "faults", {"path": "pikpak-emulator", "method": "PUT", "status": 500}
    )
    settings = UploadSettings(cutoff=4 * MIB, part_size=8 * MIB, concurrency=1)
    with pytest.raises(PikPakError, match="store had a temporary fault"):
        Uploader(drive, settings).upload_file("", "one-part.bin", path)
    [rule] = control(emulator.base_url, "faults", method="GET")["rules"]
    assert rule["fired"] == OBJECT_STORE.attempts == 3
    assert files_named(emulator, "one-part.bin") == []


def test_a_file_the_store_refuses_as_too_large_is_a_full_drive(
    emulator, drive, tmp_path, monkeypatch
):
    from pikdav.emulator import objstore

    monkeypatch.setattr(objstore, "MAX_OBJECT_SIZE", 1 * MIB)
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(2 * MIB))
    for settings in (UploadSettings(), UploadSettings(cutoff=1 * MIB, part_size=2 * MIB)):
        with pytest.raises(QuotaExceeded, match="refused the size of this file") as caught:
            Uploader(drive, settings).upload_file("", "big.bin", path)
        assert caught.value.final
    assert files_named(emulator, "big.bin") == []
    assert account_stats(emulator)["objstore_bytes"] == 0


def test_parts_are_read_from_the_file_as_they_are_sent_not_held_whole(emulator, drive, tmp_path):
    """Four 16 MiB parts in flight used to be four 16 MiB buffers (and what glibc kept of
    them: most of the gateway's peak RSS on a large PUT); now a part is read as it goes out."""
    import tracemalloc

    data = os.urandom(64 * MIB)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    settings = UploadSettings(cutoff=4 * MIB, part_size=16 * MIB, concurrency=4)
    (tmp_path / "first.bin").write_bytes(os.urandom(5 * MIB))
    # botocore reads its service models on first use (several MiB): not the upload's bytes.
    Uploader(drive, UploadSettings(cutoff=4 * MIB, part_size=4 * MIB)).upload_file(
        "", "first.bin", tmp_path / "first.bin"
    )
    tracemalloc.start()
    try:
        uploaded = Uploader(drive, settings).upload_file("", "big.bin", path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert requests.get(drive.download_link(uploaded.id).url).content == data
    # Four whole parts alone are 64 MiB (91 MiB were traced); reading them as they go out
    # leaves botocore's models, the emulator's reads and the hash's 4 MiB (29 MiB traced).
    assert peak < 48 * MIB, f"{peak / MIB:.1f} MiB held at once by a 64 MiB upload"
