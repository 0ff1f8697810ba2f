"""The gateway's HTTP server (pikdav.httpserver) against slow, silent and stalling clients:
slowloris connections hold no worker and get 408 at the deadline, silent TLS connections do
not block the others, a stalled upload ends, an upload refused before its body is not read
first, and a player that pauses a stream still gets all of it. Real sockets on loopback."""

from __future__ import annotations

import base64
import socket
import threading
import time
from urllib.parse import urlsplit

import pytest
import requests

from tests.support.command import basic
from tests.support.gateway import start_gateway
from tests.support.pikpak_raw import control
from tests.support.tlsca import make_test_ca

USER = "alice@example.com"
DATA = bytes(range(256)) * 4096  # 1 MiB


def connect(gw, timeout: float = 10) -> socket.socket:
    parts = urlsplit(gw.url)
    return socket.create_connection((parts.hostname, parts.port), timeout=timeout)


def _dribble(socks: list[socket.socket], stop: threading.Event) -> None:
    """One header line every half second on each connection, never the end of the head."""
    n = 0
    while not stop.wait(0.5):
        n += 1
        for sock in socks:
            try:
                sock.sendall(f"X-Slow-{n}: a\r\n".encode())
            except OSError:
                pass


def test_slow_and_silent_connections_hold_no_worker_and_get_408_at_the_deadline(
    make_gateway,
):
    # Given a gateway with 4 workers and an 8 s deadline for a request's head
    gw = make_gateway(download="proxy", server={"threads": 4})
    gw.server.head_timeout = 8.0
    # ... and three times as many connections that send their head a line at a time, or
    # nothing at all
    dribbling = [connect(gw) for _ in range(8)]
    for sock in dribbling:
        sock.sendall(b"PROPFIND /pikpak/ HTTP/1.1\r\nHost: x\r\n")
    silent = [connect(gw) for _ in range(4)]
    opened = time.monotonic()
    stop = threading.Event()
    dribbler = threading.Thread(target=_dribble, args=(dribbling, stop), daemon=True)
    dribbler.start()
    try:
        # When normal clients ask meanwhile, they are served at once
        for _ in range(6):
            resp = requests.request(
                "PROPFIND", gw.url + "/pikpak/", headers={"Depth": "1"}, auth=gw.auth, timeout=8
            )
            assert resp.status_code == 207
        # ... all while the slow ones were still open and unanswered
        for sock in silent:
            sock.setblocking(False)
            with pytest.raises(BlockingIOError):
                sock.recv(1)
            sock.setblocking(True)
        # Then each slow connection is answered 408 and closed by the deadline
        for sock in dribbling + silent:
            sock.settimeout(gw.server.head_timeout + 3)
            answer = b""
            while chunk := sock.recv(4096):
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 408 Request Timeout"), answer
        assert time.monotonic() - opened < gw.server.head_timeout + 10
    finally:
        stop.set()
        for sock in dribbling + silent:
            sock.close()


def test_silent_tls_connections_do_not_stop_others_from_connecting(emulator, tmp_path):
    # Given a TLS gateway, and clients that connect and never begin the TLS handshake
    ca = make_test_ca(tmp_path / "tls")
    gw = start_gateway(
        emulator,
        tmp_path / "state",
        download="proxy",
        server={"threads": 4, "tls_cert": str(ca.server_cert), "tls_key": str(ca.server_key)},
    )
    try:
        gw.server.head_timeout = 8.0
        port = gw.server.bind_addr[1]
        silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(8)]
        # When a real client connects meanwhile, it is served while the silent ones wait
        for _ in range(3):
            resp = requests.request(
                "PROPFIND",
                f"https://127.0.0.1:{port}/pikpak/",
                headers={"Depth": "1"},
                auth=gw.auth,
                verify=str(ca.ca_cert),
                timeout=8,
            )
            assert resp.status_code == 207
        for sock in silent:
            sock.setblocking(False)
            with pytest.raises(BlockingIOError):
                sock.recv(1)  # neither answered nor closed yet
            sock.setblocking(True)
        # Then the silent ones are closed by the deadline
        for sock in silent:
            sock.settimeout(gw.server.head_timeout + 3)
            assert sock.recv(4096) == b""
            sock.close()
    finally:
        gw.stop()


def test_a_stalled_upload_gets_408_and_stores_nothing(emulator, make_gateway):
    gw = make_gateway(download="proxy", read_only=False)
    gw.server.body_timeout = 1.0
    with connect(gw) as sock:
        sock.sendall(
            b"PUT /pikpak/stalled.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
            + f"Authorization: {basic()}\r\n\r\n".encode()
            + b"only the first bytes"
        )
        sock.settimeout(10)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout"), answer
    assert b"stalled" in answer
    listing = control(emulator.base_url, f"tree?username={USER}", method="GET")
    assert not any(f["path"].endswith("stalled.bin") for f in listing["files"])


def test_an_upload_refused_before_its_body_is_not_read_first(make_gateway):
    # A 1 GiB PUT without a login: cheroot used to read the whole body into memory (or wait
    # for it) before answering; it is answered at once and the connection closed instead.
    gw = make_gateway(download="proxy", read_only=False)
    with connect(gw, timeout=5) as sock:
        sock.sendall(
            b"PUT /pikpak/big.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert b"HTTP/1.1 401 " in answer, answer[:300]
    assert b"\r\nConnection: close\r\n" in answer


def test_a_put_refused_before_its_body_still_reaches_a_client_that_sends_it_all(
    emulator, make_gateway
):
    # A client that sends its whole body before it reads (cadaver, requests) got a broken pipe
    # or a reset instead of the status when the gateway answered early and closed at once:
    # the kernel drops an answer that unread bytes overtake. 8 MiB is more than the socket
    # buffers hold, so the answer always comes while the client is still sending.
    control(emulator.base_url, "files", {"username": USER, "path": "locked.txt", "content": ""})
    gw = make_gateway(download="proxy", read_only=False)
    lockinfo = (
        b'<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/>'
        b"</D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>"
    )
    lock = requests.request("LOCK", gw.url + "/pikpak/locked.txt", data=lockinfo, auth=gw.auth)
    assert lock.status_code == 200
    body = DATA * 8

    def put(path: str, authorization: str) -> bytes:
        """As neon (cadaver's library) does: the whole body, then the answer; a failed send
        is "connection was closed by server", and the status is never read."""
        with connect(gw, timeout=30) as sock:
            sock.sendall(
                f"PUT {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n".encode()
                + authorization.encode()
                + b"\r\n"
            )
            sock.sendall(body)
            return sock.recv(65536)

    for cycle in range(20):
        locked = put("/pikpak/locked.txt", f"Authorization: {basic()}\r\n")
        assert locked.startswith(b"HTTP/1.1 423 Locked\r\n"), (cycle, locked[:200])
        anonymous = put("/pikpak/new.bin", "")
        assert anonymous.startswith(b"HTTP/1.1 401 Unauthorized\r\n"), (cycle, anonymous[:200])
    assert requests.head(gw.url + "/pikpak/new.bin", auth=gw.auth).status_code == 404


def test_what_a_refused_client_still_sends_is_read_only_within_a_bound(make_gateway):
    # The rest of a refused body is read and dropped, but not forever: after drain_limit
    # bytes (or drain_timeout seconds) the connection is closed on a client that keeps sending.
    gw = make_gateway(download="proxy", read_only=False)
    gw.server.drain_limit = 4 << 20
    block = DATA * 4
    with connect(gw, timeout=30) as sock:
        sock.sendall(
            b"PUT /pikpak/endless.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\n"
        )
        sent = 0
        with pytest.raises(OSError):  # reset or broken pipe, once the bound is passed
            while sent < 256 << 20:
                sock.sendall(block)
                sent += len(block)
    assert sent < 64 << 20


def test_a_body_that_dribbles_a_byte_at_a_time_has_stalled(emulator, make_gateway):
    # One byte every 0.3 s never leaves the socket silent for body_timeout, yet is far below
    # the least rate a body must keep over each window of body_timeout seconds.
    gw = make_gateway(download="proxy", read_only=False)
    gw.server.body_timeout = 2.0
    with connect(gw, timeout=20) as sock:
        sock.sendall(
            b"PUT /pikpak/dribble.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
            + f"Authorization: {basic()}\r\n\r\n".encode()
        )
        sock.setblocking(False)
        answer = b""
        for _ in range(60):  # at most 60 bytes over 18 s: the answer comes long before
            try:
                sock.send(b"x")
            except OSError:
                pass
            time.sleep(0.3)
            try:
                chunk = sock.recv(4096)
            except BlockingIOError:
                continue
            answer += chunk
            if not chunk or b"stalled" in answer:
                break
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout"), answer
    assert b"stalled" in answer
    listing = control(emulator.base_url, f"tree?username={USER}", method="GET")
    assert not any(f["path"].endswith("dribble.bin") for f in listing["files"])


def test_a_client_that_pauses_reading_a_stream_gets_all_of_it(emulator, make_gateway):
    # The head and body timeouts are short here; a player that pauses longer than both
    # still gets the rest of its stream (only the send timeout applies to it).
    body = {"username": USER, "path": "film.mkv", "content": base64.b64encode(DATA * 8).decode()}
    control(emulator.base_url, "files", body)
    gw = make_gateway(download="proxy")
    gw.server.head_timeout = gw.server.body_timeout = 1.0
    resp = requests.get(gw.url + "/pikpak/film.mkv", auth=gw.auth, stream=True, timeout=30)
    first = resp.raw.read(65536)
    time.sleep(2.5)
    rest = resp.raw.read()
    assert first + rest == DATA * 8
