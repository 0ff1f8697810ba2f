"""The disk cache seen by a client: after a restart a library is listed and its heads read
without PikPak's links or its download servers, and so is what a player read after a seek;
what the memory cache lets go of is read from disk; while PikPak is away the library stays
readable from the cache, the status page says so, and nothing else pretends to work."""

from __future__ import annotations

import hashlib
import os
import random
import time
from pathlib import Path

import requests

from tests.support.davclients import put_files
from tests.support.gateway import _HASH, DAV_PASSWORD, PIKPAK_USER, start_gateway
from tests.support.pikpak_raw import control
from tests.support.shares import add_file

ADMIN = ("alice", DAV_PASSWORD)
USERS = {"alice": {"password_hash": _HASH, "admin": True, "mounts": ["*"]}}
HEAD = 256 * 1024


def content(seed: int, size: int = 3 << 20) -> bytes:
    return random.Random(seed).randbytes(size)


FILMS = {"Films/a.mkv": content(1), "Films/b.mkv": content(2)}


def stats(emulator) -> dict:
    return dict(emulator.world.stats.snapshot()["accounts"].get(PIKPAK_USER, {}))


def dav(gw, method: str, path: str, **kw) -> requests.Response:
    return requests.request(method, gw.url + path, auth=ADMIN, timeout=120, **kw)


def names(gw, path: str) -> set[str]:
    resp = dav(gw, "PROPFIND", path, headers={"Depth": "1"})
    assert resp.status_code == 207, resp.text
    hrefs = resp.text.split("<D:href>")[2:]  # the folder's own href first
    return {h.split("</D:href>")[0].rsplit("/", 1)[-1] for h in hrefs}


def read(gw, path: str, start: int, end: int) -> requests.Response:
    return dav(gw, "GET", path, headers={"Range": f"bytes={start}-{end - 1}"})


def status_page(gw) -> str:
    resp = dav(gw, "GET", "/_pikdav/")
    assert resp.status_code == 200
    return resp.text


def gateway(emulator, state: Path, **options):
    options.setdefault("download", "proxy")
    return start_gateway(emulator, state, users=USERS, **options)


def flush(gw) -> None:
    """Wait until the blocks read so far are on disk (they are written in the background)."""
    if gw.mounts[0].tree.disk is not None:
        gw.mounts[0].tree.disk.flush()


def stop(gw) -> None:
    disk = gw.mounts[0].tree.disk
    flush(gw)
    gw.stop()
    if disk is not None:
        disk.close()


def wait_until(condition, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"still not {what} after {seconds} s"
        time.sleep(0.1)


def test_after_a_restart_the_library_is_listed_from_disk_and_its_heads_read_without_pikpak(
    emulator, tmp_path
):
    put_files(emulator, FILMS)
    first = gateway(emulator, tmp_path / "state", listing_ttl=1)
    assert names(first, "/pikpak/Films") == {"a.mkv", "b.mkv"}
    for path, data in FILMS.items():
        for start, end in ((0, HEAD), (len(data) - HEAD, len(data))):
            assert read(first, "/pikpak/" + path, start, end).content == data[start:end]
    kept_at = time.time()
    stop(first)
    # Meanwhile a file arrives by another way (PikPak's app).
    put_files(emulator, {"Films/c.mkv": content(3)})
    wait_until(lambda: time.time() - kept_at > 1, "older than listing_ttl")  # stale now

    before = stats(emulator)
    second = gateway(emulator, tmp_path / "state", listing_ttl=1)
    # At once: the listing kept on disk (a background listing brings c.mkv soon after).
    assert names(second, "/pikpak/Films") >= {"a.mkv", "b.mkv"}
    for path, data in FILMS.items():
        for start, end in ((0, HEAD), (len(data) - HEAD, len(data))):
            assert read(second, "/pikpak/" + path, start, end).content == data[start:end]
    after = stats(emulator)
    assert after.get("link_issued", 0) == before.get("link_issued", 0)  # no link asked for
    assert after.get("download_bytes", 0) == before.get("download_bytes", 0)  # nor a CDN byte
    wait_until(lambda: "c.mkv" in names(second, "/pikpak/Films"), "revalidated")
    assert stats(emulator).get("list", 0) > before.get("list", 0)
    stop(second)


def test_while_pikpak_is_away_listings_and_cached_heads_answer_and_the_status_page_says_so(
    emulator, tmp_path
):
    put_files(emulator, FILMS)
    gw = gateway(emulator, tmp_path / "state", listing_ttl=0)  # every PROPFIND asks PikPak
    assert names(gw, "/pikpak/Films") == {"a.mkv", "b.mkv"}
    head = FILMS["Films/a.mkv"][:HEAD]
    assert read(gw, "/pikpak/Films/a.mkv", 0, HEAD).content == head
    flush(gw)
    assert "PikPak is away" not in status_page(gw)

    # PikPak's drive API answers 500 to everything.
    rule = control(emulator.base_url, "faults", {"path": "^/drive/", "status": 500})["ids"][0]
    assert names(gw, "/pikpak/Films") == {"a.mkv", "b.mkv"}
    cached = read(gw, "/pikpak/Films/a.mkv", 0, HEAD)
    assert cached.status_code == 206 and cached.content == head
    uncached = read(gw, "/pikpak/Films/b.mkv", 0, HEAD)
    assert uncached.status_code == 503
    assert int(uncached.headers["Retry-After"]) >= 1
    assert "disk cache" in uncached.text and "<html" not in uncached.text.lower()
    put = dav(gw, "PUT", "/pikpak/Films/new.txt", data=b"new")
    assert put.status_code == 503 and "changes are refused" in put.text
    page = status_page(gw)
    assert "PikPak is away: serving from its disk cache since" in page
    assert "because" in page
    # Offline tasks are not asked of PikPak meanwhile (the page would wait through retries).
    assert "offline tasks are listed once PikPak answers" in page
    metrics = dav(gw, "GET", "/metrics").text
    assert 'pikdav_serving_from_cache{mount="pikpak"} 1.0' in metrics
    assert "pikdav_disk_cache_stale_answers_total" in metrics

    # PikPak answers again: fresh listings, nothing stale, the page says nothing.
    control(emulator.base_url, f"faults?id={rule}", method="DELETE")
    put_files(emulator, {"Films/c.mkv": b"c"})
    wait_until(lambda: "c.mkv" in names(gw, "/pikpak/Films"), "fresh again")
    assert "PikPak is away" not in status_page(gw)
    assert dav(gw, "PUT", "/pikpak/Films/new.txt", data=b"new").status_code in (201, 204)
    stop(gw)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_seek_read_again_after_a_restart_costs_no_cdn_byte_and_never_the_replaced_bytes(
    emulator, tmp_path
):
    size, path = 20 << 20, "/pikpak/Films/a.mkv"
    old = emulator.world.blobs.get(add_file(emulator, "Films/a.mkv", size, seed=7)["hash"])
    at, end = (9 << 20) + 12345, (10 << 20) + 12345  # a seek: neither the head nor the tail
    reads = ((0, HEAD), (at, end))  # a player's first read, then its seek

    first = gateway(emulator, tmp_path / "state")
    for lo, hi in reads:
        assert sha(read(first, path, lo, hi).content) == sha(old.read_at(lo, hi - lo))
    stop(first)

    before = stats(emulator)
    second = gateway(emulator, tmp_path / "state")
    for lo, hi in reads:
        again = read(second, path, lo, hi)
        assert again.status_code == 206
        assert sha(again.content) == sha(old.read_at(lo, hi - lo))
    after = stats(emulator)
    assert after.get("download_bytes", 0) == before.get("download_bytes", 0)  # no CDN byte
    assert after.get("link_issued", 0) == before.get("link_issued", 0)  # nor a link
    # Replaced through pikdav by other bytes of the same size: a new content hash.
    new = content(12, size)
    assert dav(second, "PUT", path, data=new).status_code in (201, 204)
    for lo, hi in reads:
        assert sha(read(second, path, lo, hi).content) == sha(new[lo:hi])
    stop(second)
    third = gateway(emulator, tmp_path / "state")
    for lo, hi in reads:
        assert sha(read(third, path, lo, hi).content) == sha(new[lo:hi])
    stop(third)


def test_what_a_small_memory_cache_lets_go_of_is_read_from_disk_without_the_cdn(emulator, tmp_path):
    # A CDN that throttles each connection: streams are read by segments, all kept in memory.
    control(emulator.base_url, "config", {"cdn_conn_rate": 16 << 20})
    size, path = 32 << 20, "/pikpak/Films/b.mkv"
    blob = emulator.world.blobs.get(add_file(emulator, "Films/b.mkv", size, seed=8)["hash"])
    gw = gateway(emulator, tmp_path / "state", server={"stream_cache": 4 << 20})
    disk = gw.mounts[0].tree.disk
    # A player seeks to 10 MiB and plays 10 MiB; then reads the head: the memory cache (4 MiB)
    # has let go of all it played, the last 2 MiB beyond what is kept after a seek.
    assert read(gw, path, 10 << 20, 20 << 20).content == blob.read_at(10 << 20, 10 << 20)
    assert read(gw, path, 0, 6 << 20).content == blob.read_at(0, 6 << 20)
    flush(gw)

    before, hits = stats(emulator), disk.block_hits
    at, end = (18 << 20) + 4321, (20 << 20) - 1
    again = read(gw, path, at, end)
    assert again.status_code == 206 and sha(again.content) == sha(blob.read_at(at, end - at))
    assert stats(emulator).get("download_bytes", 0) == before.get("download_bytes", 0)
    assert disk.block_hits > hits  # from disk
    stop(gw)


def test_a_damaged_or_truncated_cache_file_is_dropped_and_the_bytes_come_from_pikpak(
    emulator, tmp_path
):
    data = FILMS["Films/a.mkv"]
    put_files(emulator, {"Films/a.mkv": data})
    first = gateway(emulator, tmp_path / "state")
    assert read(first, "/pikpak/Films/a.mkv", 0, HEAD).content == data[:HEAD]
    stop(first)
    cut = 0
    for path in (tmp_path / "state" / "cache").rglob("*.val"):
        size = path.stat().st_size
        with open(path, "r+b") as damaged:  # a bad sector, then a crash or a full disk
            damaged.seek(1000)
            damaged.write(b"\xff" * 100)
        os.truncate(path, size * 3 // 4)
        cut += 1
    assert cut >= 1
    second = gateway(emulator, tmp_path / "state")
    answer = read(second, "/pikpak/Films/a.mkv", 0, HEAD)
    assert answer.status_code == 206 and answer.content == data[:HEAD]
    assert second.mounts[0].tree.disk.dropped >= 1
    assert "damaged entries dropped" in status_page(second)
    stop(second)


def test_a_write_through_instance_a_makes_b_s_disk_listing_fresh(emulator, tmp_path, redis_url):
    put_files(emulator, {"Docs/a.txt": b"a", "Other/x.txt": b"x"})
    a = gateway(emulator, tmp_path / "a", redis=redis_url)
    b = gateway(emulator, tmp_path / "b", redis=redis_url)
    assert names(b, "/pikpak/Docs") == {"a.txt"}  # B keeps Docs on its disk
    assert dav(a, "PUT", "/pikpak/Docs/new.txt", data=b"new").status_code == 201
    # B has applied A's notice once any request of B has caught up with it.
    assert names(b, "/pikpak/Other") == {"x.txt"}
    stop(b)
    # B after a restart: what it kept of Docs was dropped with the notice.
    b = gateway(emulator, tmp_path / "b", redis=redis_url)
    assert names(b, "/pikpak/Docs") == {"a.txt", "new.txt"}
    stop(b)
    stop(a)


def test_while_pikpak_answers_a_listing_is_never_served_stale_from_disk(emulator, tmp_path):
    put_files(emulator, {"Docs/a.txt": b"a"})
    gw = gateway(emulator, tmp_path / "state", listing_ttl=0)  # every PROPFIND asks PikPak
    for number in range(5):
        put_files(emulator, {f"Docs/n{number}.txt": b"n"})  # by another way than pikdav
        assert f"n{number}.txt" in names(gw, "/pikpak/Docs")
    assert gw.mounts[0].tree.disk.stale_answers == 0
    stop(gw)
