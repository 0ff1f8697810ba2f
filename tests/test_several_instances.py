"""Three ``pikdav serve`` processes on one Redis share one PikPak login: one refresh per
expiry for all of them, one sign-in attempt when the password is wrong, and a Redis that
goes away and comes back costs clear 503s meanwhile, never a second refresh or a lock."""

from __future__ import annotations

import shutil
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
import yaml

from pikdav.config import load_config
from pikdav.dav.auth import hash_password
from tests.support.cluster import PIKPAK_USER, instances
from tests.support.command import DAV_PASSWORD, DAV_USER
from tests.support.davclients import put_files
from tests.support.pikpak_raw import control, total_stats
from tests.support.redis_server import redis_process
from tests.support.waits import wait_until
from tests.support.web import propfind

AUTH = (DAV_USER, DAV_PASSWORD)


def test_three_instances_fifty_threads_each_five_expiries_make_five_refreshes(
    emulator, tmp_path, redis_url
):
    put_files(emulator, {"Docs/a.txt": b"a"})
    # listing_ttl 0: every PROPFIND asks PikPak, so every request needs a working token.
    with instances(tmp_path, emulator, redis_url, listing_ttl=0) as running:
        assert [
            propfind(r.url, "pikpak/Docs/", auth=AUTH, timeout=120).status_code for r in running
        ] == [207, 207, 207]
        assert total_stats(emulator)["signin"] == 1  # the first instance's, adopted by the rest
        start = total_stats(emulator)
        local = threading.local()

        def one(url: str) -> int:
            if not hasattr(local, "session"):
                local.session = requests.Session()
            return propfind(
                url, "pikpak/Docs/", auth=AUTH, session=local.session, timeout=120
            ).status_code

        statuses: list[int] = []
        with ThreadPoolExecutor(150) as pool:
            for _ in range(5):
                control(emulator.base_url, "expire-tokens", {"username": PIKPAK_USER})
                urls = [r.url for r in running for _ in range(50)]
                statuses += list(pool.map(one, urls))
        end = total_stats(emulator)
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
    assert total_stats(emulator)["signin"] == 1
    assert total_stats(emulator)["signin_rejected"] == 1


LOCK_BODY = (
    '<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>'
    "<D:locktype><D:write/></D:locktype><D:owner>explorer</D:owner></D:lockinfo>"
)
DOWN = "is unreachable"
BACK = "is reachable again"


def dav(url: str, method: str, path: str, **kw) -> requests.Response:
    return requests.request(method, f"{url}pikpak/{path}", auth=AUTH, timeout=60, **kw)


def wait_for_log(running, text: str, count: int) -> None:
    wait_until(
        lambda: all(r.log().count(text) >= count for r in running),
        lambda: f"{count} x {text!r} in every log: {[r.log()[-2000:] for r in running]}",
        10,
    )


def lists(url: str, name: str) -> bool:
    listed = dav(url, "PROPFIND", "Docs/", headers={"Depth": "1"})
    assert listed.status_code == 207, listed.text
    return name in listed.text


def docs_listed_from_caches(emulator, urls) -> bool:
    """Every instance lists Docs/ without asking PikPak."""
    before = total_stats(emulator)["list"]
    for url in urls:
        assert lists(url, "a.txt")
    return total_stats(emulator)["list"] == before


def test_redis_stopped_and_started_again_costs_503s_meanwhile_and_nothing_after(emulator, tmp_path):
    cycles = 5
    put_files(emulator, {"Docs/a.txt": b"a"} | {f"Other{i}/b.txt": b"b" for i in range(cycles)})
    with (
        redis_process(tmp_path, persistent=True) as redis,
        instances(tmp_path, emulator, redis.url) as running,
    ):
        a, b, c = (r.url for r in running)
        for url in (a, b, c):
            assert dav(url, "PROPFIND", "Docs/", headers={"Depth": "1"}).status_code == 207
        lock = dav(a, "LOCK", "Docs/a.txt", data=LOCK_BODY, headers={"Timeout": "3600"})
        assert lock.status_code == 200
        token = lock.headers["Lock-Token"]
        refreshes = total_stats(emulator)["refresh"]
        for cycle in range(1, cycles + 1):
            redis.stop()
            wait_for_log(running, DOWN, cycle)
            control(emulator.base_url, "expire-tokens", {"username": PIKPAK_USER})
            for url in (a, b, c):
                # Reads: from the local caches.
                listed = dav(url, "PROPFIND", "Docs/", headers={"Depth": "1"})
                assert listed.status_code == 207 and "a.txt" in listed.text
                # Changes, locks and unlocks: refused, with the reason.
                for answer in (
                    dav(url, "PUT", f"Docs/new{cycle}.txt", data=b"x"),
                    dav(url, "LOCK", "Docs/c.txt", data=LOCK_BODY),
                    dav(url, "UNLOCK", "Docs/a.txt", headers={"Lock-Token": token}),
                ):
                    assert answer.status_code == 503, answer.text
                    assert "Redis" in answer.text and answer.headers["Retry-After"]
                # A listing not cached needs a token refreshed: not without Redis's lock.
                fresh = dav(url, "PROPFIND", f"Other{cycle - 1}/", headers={"Depth": "1"})
                assert fresh.status_code == 503 and "Redis" in fresh.text, fresh.text
            assert total_stats(emulator)["refresh"] == refreshes + cycle - 1
            redis.start()
            wait_for_log(running, BACK, cycle)
            for url in (a, b, c):
                fresh = dav(url, "PROPFIND", f"Other{cycle - 1}/", headers={"Depth": "1"})
                assert fresh.status_code == 207, fresh.text
            # One refresh for the three instances, made once Redis was back.
            assert total_stats(emulator)["refresh"] == refreshes + cycle
            # The lock taken before is still held, through every instance.
            assert dav(b, "PUT", "Docs/a.txt", data=b"b").status_code == 423
            assert dav(c, "PUT", f"Docs/new{cycle}.txt", data=b"x").status_code == 201
            # C's change reaches A and B through Redis: each lists the new file in a moment
            new = f"new{cycle}.txt"
            for url in (a, b, c):
                wait_until(lambda url=url, new=new: lists(url, new), new)
            # ... and caches that listing (the next cycle reads it with Redis down)
            wait_until(lambda: docs_listed_from_caches(emulator, (a, b, c)), "cached listings")
        assert dav(a, "UNLOCK", "Docs/a.txt", headers={"Lock-Token": token}).status_code == 204
        assert dav(b, "PUT", "Docs/a.txt", data=b"b").status_code == 204
        logs = [r.log() for r in running]
    for log in logs:
        # One line per change of state, whatever the number of requests meanwhile.
        assert log.count(DOWN) == cycles and log.count(BACK) == cycles, log[-3000:]


EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "several-instances"


def test_the_compose_example_holds_a_valid_config_and_haproxy_file():
    env = {
        "PIKPAK_PASSWORD": "pw",
        "DAV_PASSWORD_HASH": hash_password("x"),
        "PUBLIC_IP": "203.0.113.7",
    }
    config = load_config(EXAMPLE / "config.yaml", env)
    assert config.redis == "redis://redis:6379/0"
    assert config.accounts["main"].token_store == config.redis
    assert config.mount("pikpak").download == "auto"
    haproxy = shutil.which("haproxy")
    assert haproxy, "haproxy is missing: install Debian's haproxy (.ci/run does)"
    check = subprocess.run(
        [haproxy, "-c", "-f", str(EXAMPLE / "haproxy.cfg")], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    compose = yaml.safe_load((EXAMPLE / "compose.yaml").read_text())
    assert {"redis", "pikdav-a", "pikdav-b", "pikdav-c", "haproxy"} <= set(compose["services"])
