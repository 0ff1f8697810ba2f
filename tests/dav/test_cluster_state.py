"""Instances on one Redis behave as one server: a lock, a dead property, Finder's side file and
a ban made through one instance hold on the others."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from pikdav.vfs.cluster import Cluster
from pikdav.vfs.sidefiles import RedisSideStore
from tests.support.davclients import put_files
from tests.support.gateway import _HASH, DAV_PASSWORD, dav
from tests.support.pikpak_raw import control
from tests.support.waits import wait_until

LOCK_BODY = (
    '<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>'
    "<D:locktype><D:write/></D:locktype><D:owner>finder</D:owner></D:lockinfo>"
)
PROPPATCH_BODY = (
    '<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:x"><D:set><D:prop>'
    "<Z:colour>blue</Z:colour></D:prop></D:set></D:propertyupdate>"
)


@pytest.fixture
def three(redis_url, make_gateway, emulator):
    put_files(emulator, {"Docs/a.txt": b"a"})
    return [
        make_gateway(download="proxy", redis=redis_url, server={"login_failures": {"max": 3}})
        for _ in range(3)
    ]


def test_a_lock_taken_through_one_instance_refuses_a_write_through_another(three):
    a, b, c = three
    for _ in range(20):
        lock = dav(a, "LOCK", "/pikpak/Docs/a.txt", data=LOCK_BODY, headers={"Timeout": "60"})
        assert lock.status_code == 200, lock.text
        token = lock.headers["Lock-Token"]
        refused = dav(b, "PUT", "/pikpak/Docs/a.txt", data=b"b")
        assert refused.status_code == 423
        assert "opaquelocktoken" in dav(c, "PROPFIND", "/pikpak/Docs/a.txt",
                                        headers={"Depth": "0"}).text  # fmt: skip
        assert (
            dav(c, "UNLOCK", "/pikpak/Docs/a.txt", headers={"Lock-Token": token}).status_code == 204
        )
    assert dav(b, "PUT", "/pikpak/Docs/a.txt", data=b"b").status_code == 204
    assert dav(c, "GET", "/pikpak/Docs/a.txt").content == b"b"


def test_a_dead_property_set_through_one_instance_is_read_through_another(three):
    a, b, _ = three
    answer = dav(a, "PROPPATCH", "/pikpak/Docs/a.txt", data=PROPPATCH_BODY)
    assert answer.status_code == 207 and "200 OK" in answer.text
    found = dav(b, "PROPFIND", "/pikpak/Docs/a.txt", headers={"Depth": "0"})
    assert "<ns0:colour" in found.text or "colour>blue<" in found.text, found.text
    assert "blue" in found.text


def test_finders_side_file_written_through_one_instance_is_read_through_another(three):
    a, b, c = three
    assert dav(a, "PUT", "/pikpak/Docs/._a.txt", data=b"\x00\x05\x16\x07tags").status_code == 201
    assert dav(b, "GET", "/pikpak/Docs/._a.txt").content == b"\x00\x05\x16\x07tags"
    assert dav(c, "DELETE", "/pikpak/Docs/._a.txt").status_code == 204
    assert dav(a, "GET", "/pikpak/Docs/._a.txt").status_code == 404


def test_side_files_on_redis_are_bounded_and_expire(redis_url):
    cluster = Cluster(redis_url)
    store = RedisSideStore(cluster, "pikpak", max_bytes=1000, keep=3600)
    for i in range(5):
        store.put(f"/pikpak/._{i}", bytes(300))
    # 1000 bytes hold three of 300: the two used least recently went first.
    kept = [i for i in range(5) if store.get(f"/pikpak/._{i}") is not None]
    assert kept == [2, 3, 4]
    ttl = cluster.client.ttl(cluster.key("side", "pikpak", "file", "/pikpak/._4"))
    assert 0 < ttl <= 3600
    store.move("/pikpak/", "/pikpak/Old/")
    assert store.get("/pikpak/._4") is None
    assert store.get("/pikpak/Old/._4").content == bytes(300)


def test_failed_logins_on_every_instance_count_towards_one_ban(three):
    a, b, c = three
    wrong = ("alice", "not the password")
    for gw in (a, b, c):  # one failure on each: three in all
        assert (
            dav(gw, "PROPFIND", "/pikpak/", auth=wrong, headers={"Depth": "0"}).status_code == 401
        )
    for gw in (a, b, c):
        banned = dav(gw, "PROPFIND", "/pikpak/", headers={"Depth": "0"})
        assert banned.status_code == 429, gw.url
        assert 0 < int(banned.headers["Retry-After"]) <= 600


def test_a_waiting_upload_is_listed_by_every_instance_and_only_its_owner_deletes_it(
    redis_url, make_gateway, emulator
):
    put_files(emulator, {"Docs/a.txt": b"a"})
    a, b = (
        make_gateway(download="proxy", background_uploads=True, redis=redis_url) for _ in range(2)
    )
    # PikPak's object store holds back every upload for a while: the files keep waiting.
    control(
        emulator.base_url,
        "faults",
        {"path": "pikpak-emulator", "method": "PUT", "delay": 3, "times": 20},
    )
    for i in range(5):
        assert dav(a, "PUT", f"/pikpak/Docs/w{i}.bin", data=b"w" * 1000).status_code == 201
    # A's notices reach B through Redis (without them B never lists the waiting files).
    wait_until(
        lambda: all(
            f"w{i}.bin" in dav(b, "PROPFIND", "/pikpak/Docs/", headers={"Depth": "1"}).text
            for i in range(5)
        ),
        "B lists the waiting files",
        15,
    )
    # w4 waits behind the others (w0 may be on its way already).
    refused = dav(b, "DELETE", "/pikpak/Docs/w4.bin")
    assert refused.status_code == 423
    assert "another instance" in refused.text
    assert dav(b, "GET", "/pikpak/Docs/w4.bin").status_code == 423
    assert dav(a, "GET", "/pikpak/Docs/w4.bin").content == b"w" * 1000
    assert dav(a, "DELETE", "/pikpak/Docs/w4.bin").status_code == 204
    control(emulator.base_url, "faults", method="DELETE")
    # Once stored, every instance lists (and serves) the stored files.
    wait_until(a.mounts[0].pending.idle, "the uploads finished")
    # The owner's notice that the upload is done reaches B.
    wait_until(
        lambda: dav(b, "GET", "/pikpak/Docs/w3.bin").status_code == 200,
        "B sees the upload as done",
        15,
        every=0.02,
    )
    for gw in (a, b):
        listed = dav(gw, "PROPFIND", "/pikpak/Docs/", headers={"Depth": "1"})
        assert "w4.bin" not in listed.text
        assert all(f"w{i}.bin" in listed.text for i in range(4))
    assert dav(b, "GET", "/pikpak/Docs/w3.bin").content == b"w" * 1000


def test_two_instances_asked_to_lock_one_file_at_once_grant_one_lock(three):
    """The check for a conflicting lock and the new lock are one step for all instances."""
    a, b, _ = three
    for cycle in range(20):
        path = f"/pikpak/Docs/race{cycle}.txt"
        with ThreadPoolExecutor(2) as pool:
            asked = [pool.submit(dav, gw, "LOCK", path, data=LOCK_BODY) for gw in (a, b)]
            answers = [future.result() for future in asked]
        statuses = sorted(answer.status_code for answer in answers)
        # A LOCK on an unmapped URL makes the (empty) file: 201 for the winner.
        assert statuses in ([201, 423], [200, 423]), (cycle, statuses)


@pytest.mark.parametrize("on_redis", [True, False], ids=["one-redis", "alone"])
def test_a_status_page_form_served_by_one_instance_is_taken_by_another(
    redis_url, make_gateway, on_redis
):
    """Behind a load balancer the page and its button's POST may reach different instances:
    with a shared Redis they sign the form's token with one key; lone instances do not."""
    admin = ("alice", DAV_PASSWORD)
    users = {"alice": {"password_hash": _HASH, "admin": True}}
    redis = {"redis": redis_url} if on_redis else {}
    a, b = (make_gateway(download="proxy", users=users, **redis) for _ in range(2))
    for cycle in range(5):  # pages from either instance, posted to the other
        served, posted = (a, b) if cycle % 2 == 0 else (b, a)
        page = requests.get(served.url + "/_pikdav/", auth=admin, timeout=30)
        assert page.status_code == 200
        token = re.search(r'name="csrf" value="([0-9a-f]{64})"', page.text).group(1)
        answer = requests.post(
            posted.url + "/_pikdav/bans/lift",
            data={"csrf": token, "address": f"127.0.0.{cycle + 2}"},
            auth=admin,
            timeout=30,
        )
        if on_redis:
            assert answer.status_code == 200, answer.text
            assert "reload the page" not in answer.text
        else:
            assert answer.status_code == 403 and "reload the page" in answer.text
