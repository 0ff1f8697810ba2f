"""Three ``pikdav serve`` processes on one Redis share one PikPak login: one refresh per
expiry for all of them, one sign-in attempt when the password is wrong, and a Redis that
goes away and comes back costs clear 503s meanwhile, never a second refresh or a lock."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.support.cluster import PIKPAK_USER, instances
from tests.support.command import DAV_PASSWORD, DAV_USER
from tests.support.davclients import put_files
from tests.support.pikpak_raw import control

AUTH = (DAV_USER, DAV_PASSWORD)


def counters(emulator) -> dict[str, int]:
    return control(emulator.base_url, "stats", method="GET")["total"]


def propfind(url: str, session: requests.Session | None = None) -> int:
    http = session or requests
    return http.request(
        "PROPFIND", f"{url}pikpak/Docs/", auth=AUTH, headers={"Depth": "1"}, timeout=120
    ).status_code


def test_three_instances_fifty_threads_each_five_expiries_make_five_refreshes(
    emulator, tmp_path, redis_url
):
    put_files(emulator, {"Docs/a.txt": b"a"})
    # listing_ttl 0: every PROPFIND asks PikPak, so every request needs a working token.
    with instances(tmp_path, emulator, redis_url, listing_ttl=0) as running:
        assert [propfind(r.url) for r in running] == [207, 207, 207]
        assert counters(emulator)["signin"] == 1  # the first instance's, adopted by the rest
        start = counters(emulator)
        local = threading.local()

        def one(url: str) -> int:
            if not hasattr(local, "session"):
                local.session = requests.Session()
            return propfind(url, local.session)

        statuses: list[int] = []
        with ThreadPoolExecutor(150) as pool:
            for _ in range(5):
                control(emulator.base_url, "expire-tokens", {"username": PIKPAK_USER})
                urls = [r.url for r in running for _ in range(50)]
                statuses += list(pool.map(one, urls))
        end = counters(emulator)
    assert len(statuses) == 750
    assert [s for s in statuses if s != 207] == []
    assert end["refresh"] - start["refresh"] == 5
    assert end["refresh_rejected"] - start["refresh_rejected"] == 0
    assert end["signin"] - start["signin"] == 0


def test_a_wrong_password_on_three_instances_costs_one_sign_in_attempt(
    emulator, tmp_path, redis_url
):
    with instances(tmp_path, emulator, redis_url, password="wrong") as running:
        for _ in range(20):
            for r in running:
                answer = requests.request(
                    "PROPFIND", f"{r.url}pikpak/", auth=AUTH, headers={"Depth": "1"}, timeout=60
                )
                assert answer.status_code == 503
                assert "cannot sign in to PikPak" in answer.text
    # As on one instance: the first attempt is refused, the pause it starts is shared.
    assert counters(emulator)["signin"] == 1
    assert counters(emulator)["signin_rejected"] == 1
