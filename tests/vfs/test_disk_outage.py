"""Every way PikPak can be away makes a mount serve its folders from the disk cache, and say
why; a refusal that is no outage (the folder is gone) is passed on as it is."""

from __future__ import annotations

import pytest

from pikdav.pikpak import http
from pikdav.pikpak.drive import Drive
from pikdav.pikpak.errors import NotFound
from pikdav.pikpak.session import Credentials, RetryPolicy, Session
from pikdav.pikpak.tokenstore import MemoryTokenStore
from pikdav.vfs.disk import DiskCache
from pikdav.vfs.mount import Mount
from pikdav.vfs.parts import Reading, Writing
from pikdav.vfs.source import DriveSource
from tests.support.davclients import put_files
from tests.support.pikpak_raw import control

USER, PASSWORD = "alice@example.com", "correct horse"


def mount(emulator, disk: DiskCache) -> Mount:
    session = Session(
        Credentials(USER, PASSWORD),
        MemoryTokenStore(),
        user_api=emulator.base_url,
        drive_api=emulator.base_url,
        retry=RetryPolicy(attempts=2, backoff=0.1, retry_after_max=1.0, slow_down=0.1),
    )
    source = DriveSource(Drive(session))
    reading = Reading(http.cdn_session(session.connection), disk=disk)
    return Mount("pikpak", source, reading=reading, writing=Writing(), listing_ttl=0)


@pytest.mark.parametrize(
    ("fault", "said"),
    [
        ({"status": 500}, "temporary fault"),
        ({"status": 503}, "temporary fault"),
        ({"rate_limit": {"retry_after": 1}}, "rate limiting"),
        ({"too_frequent": True}, "rate limiting"),
        ({"drop_after": 0}, "cannot reach PikPak"),
    ],
    ids=["500", "503", "429", "too frequent", "dropped connection"],
)
def test_pikpak_away_any_way_serves_the_folder_from_disk_and_says_why(
    emulator, tmp_path, fault, said
):
    put_files(emulator, {"Films/a.mkv": b"a", "Films/b.mkv": b"b"})
    disk = DiskCache(tmp_path / "cache")
    films_mount = mount(emulator, disk)
    films = films_mount.resolve(["Films"])
    assert films is not None
    assert [e.name for e in films_mount.children(films)] == ["a.mkv", "b.mkv"]
    assert not films_mount.tree.outage.active

    control(emulator.base_url, "faults", {"path": "^/drive/", **fault})
    assert [e.name for e in films_mount.children(films)] == ["a.mkv", "b.mkv"]
    outage = films_mount.tree.outage
    assert outage.active
    assert said in outage.reason
    assert "serving from its disk cache since" in outage.describe()
    assert disk.stale_answers == 1
    disk.close()


def test_a_folder_pikpak_says_is_gone_is_not_served_from_disk(emulator, tmp_path, alice):
    put_files(emulator, {"Films/a.mkv": b"a"})
    disk = DiskCache(tmp_path / "cache")
    films_mount = mount(emulator, disk)
    films = films_mount.resolve(["Films"])
    assert films is not None
    films_mount.children(films)
    assert alice.post("/drive/v1/files:batchDelete", {"ids": [films.id]}).status_code == 200
    with pytest.raises(NotFound):
        films_mount.children(films)
    assert not films_mount.tree.outage.active
    disk.close()
