"""Every way PikPak can be away makes a mount serve its folders from the disk cache, and say
why; a refusal that is no outage (the folder is gone) is passed on as it is."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

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
from tests.support.waits import wait_until

USER, PASSWORD = "alice@example.com", "correct horse"


def mount(emulator, disk: DiskCache, retry: RetryPolicy | None = None) -> Mount:
    session = Session(
        Credentials(USER, PASSWORD),
        MemoryTokenStore(),
        user_api=emulator.base_url,
        drive_api=emulator.base_url,
        retry=retry or RetryPolicy(attempts=2, backoff=0.1, retry_after_max=1.0, slow_down=0.1),
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
    # The fetch's last retry fails in the background, after the client had its answer.
    wait_until(lambda: outage.active, "the outage to begin", 10)
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


def faults_fired(emulator) -> int:
    return emulator.world.stats.snapshot()["total"].get("faults_fired", 0)


def test_a_folder_kept_on_disk_answers_at_pikpak_s_first_failure_not_after_every_retry(
    emulator, tmp_path
):
    """A client waits for one failed call, not for the whole retry policy (it used to wait
    about 11 s, longer than some clients' timeouts): the kept listing answers, the fetch's
    retries go on behind it and decide whether PikPak is away; meanwhile other folders kept
    on disk answer from there without a call."""
    put_files(emulator, {"Films/a.mkv": b"a", "Shows/s.mkv": b"s"})
    # The retry comes 2–4 s after the first failure: the answers below come before it.
    retry = RetryPolicy(attempts=2, backoff=4.0, jitter=0.5)
    for cycle in range(3):
        disk = DiskCache(tmp_path / f"cache{cycle}")
        library = mount(emulator, disk, retry)
        films, shows = library.resolve(["Films"]), library.resolve(["Shows"])
        assert films is not None and shows is not None
        library.children(films), library.children(shows)
        outage = library.tree.outage

        control(emulator.base_url, "faults", {"path": "^/drive/v1/files$", "status": 503})
        before = faults_fired(emulator)
        assert [e.name for e in library.children(films)] == ["a.mkv"]
        assert faults_fired(emulator) == before + 1  # one call failed; its retry is pending
        assert outage.doubted and not outage.active
        # The status page says so (it shows what describe() says).
        assert "folders kept on disk are answered from there" in outage.describe()
        assert "temporary fault" in outage.describe()
        assert [e.name for e in library.children(shows)] == ["s.mkv"]
        assert faults_fired(emulator) == before + 1  # no call for a folder kept on disk
        assert disk.stale_answers == 2

        wait_until(lambda o=outage: o.active and not o.doubted, "the outage to begin", 15)
        assert faults_fired(emulator) == before + 2
        control(emulator.base_url, "faults", method="DELETE")
        disk.close()


def fetches() -> set[threading.Thread]:
    """The threads fetching a listing behind a client that was answered from disk."""
    return {t for t in threading.enumerate() if t.name == "fetch listing"}


def test_a_failure_pikpak_recovers_from_on_its_retry_is_no_outage(emulator, tmp_path):
    """A folder's clients all answer from disk at PikPak's first failure, also those that
    came while another one's call was on its way (a file manager asks for a folder twice);
    the retry's answer is kept: PikPak answered, so no outage is said and the next listing is
    PikPak's, fresh."""
    put_files(emulator, {"Films/a.mkv": b"a"})
    disk = DiskCache(tmp_path / "cache")
    # The failure comes 0.2 s after the call, the retry 1 s after the failure.
    library = mount(emulator, disk, RetryPolicy(attempts=3, backoff=1.0, jitter=0.0))
    films = library.resolve(["Films"])
    assert films is not None
    library.children(films)
    outage = library.tree.outage
    for cycle in range(20):
        fault = {"path": "^/drive/v1/files$", "status": 503, "times": 1, "after": 0.2}
        control(emulator.base_url, "faults", fault)
        put_files(emulator, {f"Films/new{cycle}.mkv": b"n"})
        together = threading.Barrier(3)
        earlier = fetches()  # of other tests, if any

        def look(together: threading.Barrier = together) -> list[str]:
            together.wait()
            return [e.name for e in library.children(films)]

        with ThreadPoolExecutor(3) as pool:
            shown = list(pool.map(lambda _: look(), range(3)))
        for names in shown:  # the kept listing, from before the new file, for every client
            assert f"new{cycle}.mkv" not in names and "a.mkv" in names, (cycle, shown)
        wait_until(lambda: not outage.doubted, "the retry to end", 10)
        # The other clients' fetches end too (here, with listing_ttl 0, each asks again).
        wait_until(lambda e=earlier: not fetches() - e, "the fetches to end", 10)
        assert not outage.active
        assert f"new{cycle}.mkv" in [e.name for e in library.children(films)]
        control(emulator.base_url, "faults", method="DELETE")
    disk.close()
