"""One logged-in user cannot take the gateway from the others: a user who holds many slow
uploads and many downloads it never reads (paused players) gets 429 beyond its cap, and
another user's PROPFINDs and ``/healthz`` keep being answered at once. Real sockets, gateway
and emulator on loopback."""

from __future__ import annotations

import socket
import statistics
import threading
import time
from urllib.parse import urlsplit

import requests

from pikdav.dav.auth import hash_password
from tests.support.command import basic
from tests.support.gateway import DAV_PASSWORD, DAV_USER
from tests.support.pikpak_raw import control

USER = "alice@example.com"
HOLDER, HOLDER_PASSWORD = "mallory", "holds-everything"


def open_connection(gw, *, small_buffer: bool = False) -> socket.socket:
    parts = urlsplit(gw.url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if small_buffer:  # a paused player's socket: it fills at once, and stays full
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    sock.settimeout(10)
    sock.connect((parts.hostname, parts.port))
    return sock


def first_line(sock: socket.socket) -> bytes:
    """The start of what the gateway sent on `sock` (bounded wait)."""
    sock.settimeout(10)
    try:
        return sock.recv(4096)
    except OSError:
        return b""


def film_and_two_users(emulator) -> dict:
    """A 1 GiB film on the drive, and the DAV users: the one who waits and the one who holds."""
    control(
        emulator.base_url,
        "files",
        {"username": USER, "path": "film.mkv", "size": 1 << 30, "seed": 3},
    )
    return {
        DAV_USER: {"password_hash": hash_password(DAV_PASSWORD), "mounts": ["*"]},
        HOLDER: {"password_hash": hash_password(HOLDER_PASSWORD), "mounts": ["*"]},
    }


def test_a_user_holding_80_slow_uploads_and_80_paused_downloads_takes_nobody_elses_turn(
    emulator, make_gateway
):
    # Given a gateway with 32 threads, and two users
    users = film_and_two_users(emulator)
    gw = make_gateway(download="proxy", read_only=False, users=users)
    assert gw.server.requests.min == 32
    authorization = f"Authorization: {basic(HOLDER, HOLDER_PASSWORD)}\r\n"
    # When one of them opens 80 uploads that send a byte every 10 s and 80 downloads of a
    # 1 GiB film that it never reads
    uploads, downloads = [], []
    for n in range(80):
        up = open_connection(gw)
        up.sendall(
            f"PUT /pikpak/slow-{n}.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n".encode()
            + authorization.encode()
            + b"\r\n"
        )
        uploads.append(up)
        down = open_connection(gw, small_buffer=True)
        down.sendall(
            b"GET /pikpak/film.mkv HTTP/1.1\r\nHost: x\r\n" + authorization.encode() + b"\r\n"
        )
        downloads.append(down)
    stop = threading.Event()

    def dribble() -> None:
        while not stop.wait(10):
            for up in uploads:
                try:
                    up.send(b"x")
                except OSError:
                    pass  # refused and closed by the gateway

    dribbler = threading.Thread(target=dribble, daemon=True)
    dribbler.start()
    try:
        # ... the other user PROPFINDs once a second for 30 s, and /healthz is asked as often
        dav = requests.Session()
        dav.auth = (DAV_USER, DAV_PASSWORD)
        took, health = [], []
        for _ in range(30):
            started = time.perf_counter()
            answer = dav.request(
                "PROPFIND", gw.url + "/pikpak/", headers={"Depth": "1"}, timeout=10
            )
            took.append(time.perf_counter() - started)
            assert answer.status_code == 207, answer.text[:300]
            health.append(requests.get(gw.url + "/healthz", timeout=10).status_code)
            time.sleep(max(0.0, 1 - (time.perf_counter() - started)))
        # Then every PROPFIND was answered, 95 % of them within a second, and /healthz always
        assert health == [200] * 30
        p95 = statistics.quantiles(took, n=20)[-1]
        assert p95 < 1.0, [round(t, 2) for t in took]
        # ... and the holder's requests beyond its cap were answered 429 with Retry-After,
        # while those within it run (the downloads it never reads, the uploads it dribbles)
        starts = [first_line(down) for down in downloads]
        refused = [s for s in starts if s.startswith(b"HTTP/1.1 429 Too Many Requests\r\n")]
        served = [s for s in starts if s.startswith(b"HTTP/1.1 200 OK\r\n")]
        assert len(refused) + len(served) == 80, {s[:40] for s in starts}
        assert refused and served
        assert b"\r\nRetry-After: 5\r\n" in refused[0]
        assert b"the most it may have at once" in refused[0]
    finally:
        stop.set()
        for sock in uploads + downloads:
            sock.close()


def wait_for(condition, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_caps_per_user_and_per_address_are_given_back_and_the_pool_shrinks_back(
    emulator, make_gateway
):
    users = film_and_two_users(emulator)
    gw = make_gateway(
        download="proxy",
        users=users,
        server={"threads": 2, "requests_per_user": 2, "requests_per_address": 3},
    )
    holder = f"Authorization: {basic(HOLDER, HOLDER_PASSWORD)}\r\n".encode()

    def paused_download(authorization: bytes) -> socket.socket:
        """A download that runs, once the slots of closed ones are given back (the gateway
        notices a closed download at its next send)."""
        for _ in range(200):
            sock = open_connection(gw, small_buffer=True)
            sock.sendall(b"GET /pikpak/film.mkv HTTP/1.1\r\nHost: x\r\n" + authorization + b"\r\n")
            start = first_line(sock)
            if start.startswith(b"HTTP/1.1 200 OK\r\n"):
                return sock
            sock.close()
            assert start.startswith(b"HTTP/1.1 429 "), start[:300]
            time.sleep(0.05)
        raise AssertionError("the slots of closed downloads were never given back")

    grown = 0
    for cycle in range(20):
        # Given a user with two paused downloads running, its cap
        held = [paused_download(holder) for _ in range(2)]
        # Then its third request is refused at once, with the reason
        third = requests.get(gw.url + "/pikpak/", auth=(HOLDER, HOLDER_PASSWORD), timeout=10)
        assert third.status_code == 429, (cycle, third.text)
        assert third.headers["Retry-After"] == "5"
        assert "this user already has 2 requests running" in third.text
        # ... while another user from the same address gets the third slot of the address,
        # and not a fourth
        other = paused_download(f"Authorization: {basic()}\r\n".encode())
        grown = max(grown, len(gw.server.requests._threads))
        fourth = requests.get(gw.url + "/pikpak/", auth=(DAV_USER, DAV_PASSWORD), timeout=10)
        assert fourth.status_code == 429, (cycle, fourth.text)
        assert "this address already has 3 requests running" in fourth.text
        # When the downloads end, their slots are given back (the next cycle takes them)
        for sock in [*held, other]:
            sock.close()
    # ... and the pool, grown while they ran (3 downloads on 2 threads), shrinks back
    assert grown >= 3
    assert wait_for(lambda: len(gw.server.requests._threads) == 2, timeout=30)


def test_a_download_never_read_is_dropped_after_send_timeout_and_frees_its_slot(
    emulator, make_gateway
):
    control(
        emulator.base_url,
        "files",
        {"username": USER, "path": "film.mkv", "size": 1 << 30, "seed": 3},
    )
    gw = make_gateway(download="proxy", server={"requests_per_user": 1, "send_timeout": 2})
    # Given a player that paused its only stream for good (its socket full, never read)
    paused = open_connection(gw, small_buffer=True)
    paused.sendall(
        f"GET /pikpak/film.mkv HTTP/1.1\r\nHost: x\r\nAuthorization: {basic()}\r\n\r\n".encode()
    )
    try:
        assert first_line(paused).startswith(b"HTTP/1.1 200 OK\r\n")  # it played a moment
        # Then while the gateway waits for it to read, the user's next request is over its cap
        assert requests.get(gw.url + "/pikpak/", auth=gw.auth, timeout=10).status_code == 429
        # ... until send_timeout has passed and the paused stream is dropped
        assert wait_for(
            lambda: requests.get(gw.url + "/pikpak/", auth=gw.auth, timeout=10).status_code == 200
        )
        # ... with the connection closed: what the player reads ends short of the film
        paused.settimeout(10)
        received = 0
        while chunk := paused.recv(1 << 20):
            received += len(chunk)
        assert 0 < received < 1 << 30
    finally:
        paused.close()
