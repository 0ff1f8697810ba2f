"""Locks taken, released and left to expire while other clients list the folder: every
PROPFIND is answered (WsgiDAV's in-memory lock storage purged an expired lock from inside its
own walk over the locks, and the listing got a 500 "dictionary changed size during
iteration"). A race, so it runs many threads over many cycles."""

from __future__ import annotations

import base64
import threading
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.support.pikpak_raw import control

USER = "alice@example.com"
FILES = [f"f{i}.txt" for i in range(4)]
LOCKINFO = (
    b'<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:">'
    b"<D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype>"
    b"<D:owner>race</D:owner></D:lockinfo>"
)
CYCLES = 20
READERS = 3


def lock(gw, path: str, seconds: int) -> str:
    answer = requests.request(
        "LOCK",
        gw.url + path,
        auth=gw.auth,
        data=LOCKINFO,
        headers={"Timeout": f"Second-{seconds}", "Depth": "0"},
        timeout=30,
    )
    assert answer.status_code == 200, (path, answer.status_code, answer.text)
    return answer.headers["Lock-Token"]


def unlock(gw, path: str, token: str) -> None:
    answer = requests.request(
        "UNLOCK", gw.url + path, auth=gw.auth, headers={"Lock-Token": token}, timeout=30
    )
    assert answer.status_code == 204, (path, answer.status_code, answer.text)


def test_listings_are_answered_while_locks_come_and_go_and_expire(gateway, emulator):
    for name in [*FILES, "churn.txt"]:
        control(
            emulator.base_url,
            "files",
            {"username": USER, "path": f"Docs/{name}", "content": base64.b64encode(b"x").decode()},
        )
    statuses: list[int] = []
    failures: list[str] = []

    def read_until(cleared: threading.Event, lockers_done: threading.Event) -> None:
        while not cleared.is_set():
            answer = requests.request(
                "PROPFIND", gateway.url + "/pikpak/Docs/", auth=gateway.auth,
                headers={"Depth": "1"}, timeout=30,
            )  # fmt: skip
            statuses.append(answer.status_code)
            if answer.status_code != 207:
                failures.append(answer.text[:200])
            elif lockers_done.is_set() and b"activelock" not in answer.content:
                cleared.set()  # every lock released or expired, and seen to be gone

    def churn() -> None:
        for _ in range(5):
            unlock(gateway, "/pikpak/Docs/churn.txt", lock(gateway, "/pikpak/Docs/churn.txt", 60))

    def take_locks() -> None:
        for i, name in enumerate(FILES):
            token = lock(gateway, f"/pikpak/Docs/{name}", 1)
            if i % 2 == 0:
                unlock(gateway, f"/pikpak/Docs/{name}", token)  # the others expire

    with ThreadPoolExecutor(READERS + 2) as pool:
        for _ in range(CYCLES):
            cleared, lockers_done = threading.Event(), threading.Event()
            readers = [pool.submit(read_until, cleared, lockers_done) for _ in range(READERS)]
            writers = [pool.submit(take_locks), pool.submit(churn)]
            for writer in writers:
                writer.result(timeout=60)
            lockers_done.set()
            assert cleared.wait(timeout=60), "the expired locks never went away"
            for reader in readers:
                reader.result(timeout=60)

    assert failures == [], failures[:3]
    assert len(statuses) >= CYCLES * READERS
