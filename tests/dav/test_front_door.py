"""The front door, as an attacker or a careless client meets it: forged log lines, HEAD on
kept-alive connections, malformed paths, credentials and bodies, unexpected errors, status
lines, streams the CDN gives up on, and a browser at a folder. Gateway and emulator run on
loopback and talk real HTTP."""

from __future__ import annotations

import base64
import http.client
import logging
import re
import socket
from urllib.parse import urlsplit

import pytest
import requests

from pikdav.dav.auth import hash_password
from pikdav.pikpak.cdn import LinkReader
from pikdav.pikpak.segments import SegmentedReader
from pikdav.vfs.tree import DriveTree
from tests.support.command import basic
from tests.support.gateway import DAV_PASSWORD, DAV_USER, PIKPAK_USER
from tests.support.pikpak_raw import control
from tests.support.waits import request_lines, wait_until

USER = "alice@example.com"
DATA = bytes(range(256)) * 4096  # 1 MiB


def add_file(emulator, path: str, data: bytes = DATA) -> dict:
    body = {"username": USER, "path": path, "content": base64.b64encode(data).decode()}
    return control(emulator.base_url, "files", body)


def connect(gw, timeout: float = 10) -> socket.socket:
    parts = urlsplit(gw.url)
    return socket.create_connection((parts.hostname, parts.port), timeout=timeout)


def exchange(gw, request: bytes, timeout: float = 10) -> bytes:
    """Send raw bytes on a new connection; everything the server sends until it closes."""
    with connect(gw, timeout) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        return data


def http_conn(gw, timeout: float = 10) -> http.client.HTTPConnection:
    parts = urlsplit(gw.url)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)


AUTH = {"Authorization": basic()}


# --- log forging ---------------------------------------------------------------------------------

FORGED = (
    "2026-12-01 07:00:00,000 INFO pikdav.requests: 203.0.113.9 DELETE /pikpak/Docs 204 0 B 1 ms"
)


def test_nothing_a_client_sends_forges_or_floods_a_log_line(emulator, make_gateway, caplog):
    caplog.set_level(logging.DEBUG)
    gw = make_gateway(download="proxy")
    add_file(emulator, "a.txt", b"hello")
    path = "/x%0d%0a" + FORGED.replace(" ", "%20") + "%1b[31m%e2%80%a8"
    # A forged line in the path (refused: names have no control characters; but logged)
    for request in (
        f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n",
        f"GET /pikpak{path} HTTP/1.1\r\nHost: x\r\nAuthorization: {basic()}\r\n\r\n",
    ):
        assert exchange(gw, request.encode()).startswith(b"HTTP/1.1 400 Bad Request")
    # A user name with a line break, an escape sequence, and one of 75 KB
    for name in (f"eve\r\n{FORGED}\x1b[2J", "A" * 75_000):
        answer = exchange(
            gw,
            f"GET /pikpak/a.txt HTTP/1.1\r\nHost: x\r\nAuthorization: {basic(name, 'x')}"
            "\r\n\r\n".encode(),
        )
        assert answer.startswith((b"HTTP/1.1 401", b"HTTP/1.1 400")), answer[:100]
    messages = [r.getMessage() for r in caplog.records]
    assert any("GET /x\\x0d\\x0a2026-12-01" in m for m in messages)  # logged, escaped
    assert any("login failed for user 'eve\\x0d\\x0a2026" in m for m in messages)
    for message in messages:
        assert "\r" not in message and "\n" not in message and "\x1b" not in message, message
        assert "\u2028" not in message
        assert len(message) < 1000, message[:200]


# --- HEAD ----------------------------------------------------------------------------------------


def test_head_answers_have_no_body_whatever_their_status(emulator, make_gateway):
    add_file(emulator, "Films/a.mp4")
    gw = make_gateway(download="proxy")
    conn = http_conn(gw)
    # Kodi's way: HEAD without credentials first, then on the same connection with them
    for headers, status in (
        ({}, 401),
        (AUTH, 200),
        ({**AUTH, "Range": "bytes=5000000-"}, 416),
        ({**AUTH, "Range": "bytes=10-19"}, 206),
        ({"Authorization": "Basic !!!"}, 401),
    ):
        conn.request("HEAD", "/pikpak/Films/a.mp4", headers=headers)
        resp = conn.getresponse()
        assert resp.status == status
        resp.read()
        # The next request on the connection reads its own answer, not a HEAD's body
        conn.request("GET", "/pikpak/Films/a.mp4", headers={**AUTH, "Range": "bytes=0-3"})
        resp = conn.getresponse()
        assert resp.status == 206 and resp.read() == DATA[:4]
    for path, status in (("/pikpak/missing.mp4", 404), ("/%ff", 400)):
        conn.request("HEAD", path, headers=AUTH)
        resp = conn.getresponse()
        assert resp.status == status
        resp.read()
    conn.request("GET", "/healthz")
    assert conn.getresponse().read() == b"ok\n"


# --- malformed requests --------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/%ff", "/%c0%ae", "/%e2%82", "/pikpak/%ff.txt"])
def test_a_path_that_is_not_utf8_is_a_400(make_gateway, caplog, path):
    gw = make_gateway(download="proxy")
    for headers in ("", f"Authorization: {basic()}\r\n"):
        answer = exchange(gw, f"GET {path} HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())
        assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n"), answer[:200]
        assert answer.endswith(b"\r\n\r\nthe path is not valid UTF-8\n")
    assert "Traceback" not in caplog.text and "UnicodeDecodeError" not in caplog.text


@pytest.mark.parametrize(
    ("authorization", "status"),
    [
        ("Basic !!!", 401),
        ("Basic " + base64.b64encode(b"no colon here").decode(), 401),
        ("Basic ", 401),
        ("Basic", 401),
        ("Basic " + base64.b64encode(b"\xff\xfe:\xc0").decode(), 401),
        ("Basic " + "QUFB" * 25_000, 400),
    ],
)
def test_a_malformed_basic_header_is_a_401_or_400(make_gateway, caplog, authorization, status):
    gw = make_gateway(download="proxy")
    conn = http_conn(gw)
    conn.request("PROPFIND", "/pikpak/", headers={"Authorization": authorization, "Depth": "1"})
    resp = conn.getresponse()
    body = resp.read()
    assert resp.status == status
    assert b"Error" not in body and b"base64" not in body and b"Traceback" not in body
    assert len(body) < 1000
    assert "Traceback" not in caplog.text


def test_a_chunked_upload_cut_before_its_last_chunk_is_a_400_and_stores_nothing(
    emulator, make_gateway, caplog
):
    gw = make_gateway(download="proxy", read_only=False)
    answer = exchange(
        gw,
        b"PUT /pikpak/cut.bin HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        + f"Authorization: {basic()}\r\n\r\n".encode()
        + b"10\r\n0123456789abcdef\r\n10\r\n01234",  # the client goes away here
    )
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n"), answer[:300]
    assert answer.endswith(b"the upload ended early; nothing was stored\n")
    assert requests.head(gw.url + "/pikpak/cut.bin", auth=gw.auth).status_code == 404
    listing = control(emulator.base_url, f"tree?username={USER}", method="GET")
    assert not any(f["path"].endswith("cut.bin") for f in listing["files"])
    assert "Traceback" not in caplog.text


def answer_without_closing(gw, request: bytes, timeout: float = 10) -> bytes:
    """Send raw bytes and keep the connection open for more (as a client that has more of
    the body to send); everything the server sends until it closes, within ``timeout``."""
    with connect(gw, timeout) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        return data


def test_a_chunk_size_too_large_for_any_body_is_a_400_with_its_reason(make_gateway, caplog):
    gw = make_gateway(download="proxy", read_only=False)
    answer = answer_without_closing(
        gw,
        b"PUT /pikpak/huge.bin HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        + f"Authorization: {basic()}\r\n\r\n".encode()
        + b"fffffffffffffffffff\r\nsome bytes",
    )
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n"), answer[:300]
    assert b"chunk size is not a hexadecimal number of at most 16 digits" in answer
    assert requests.head(gw.url + "/pikpak/huge.bin", auth=gw.auth).status_code == 404
    assert "Traceback" not in caplog.text and "OverflowError" not in caplog.text


def test_a_negative_content_length_is_a_400_at_once(make_gateway):
    gw = make_gateway(download="proxy", read_only=False)
    # The client keeps the connection open: the answer may not wait for the body's end.
    answer = answer_without_closing(
        gw,
        b"PUT /pikpak/neg.bin HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n"
        + f"Authorization: {basic()}\r\n\r\nabc".encode(),
    )
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n"), answer[:300]
    assert answer.endswith(b"Content-Length must be a whole number of bytes.")
    assert requests.head(gw.url + "/pikpak/neg.bin", auth=gw.auth).status_code == 404


def read_status(sock: socket.socket) -> bytes:
    """The first status line the server sends on ``sock``."""
    line = b""
    while not line.endswith(b"\r\n"):
        byte = sock.recv(1)
        assert byte, line
        line += byte
    return line


def test_expect_100_continue_is_answered_only_when_the_body_is_wanted(emulator, make_gateway):
    users = {
        DAV_USER: {"password_hash": hash_password(DAV_PASSWORD), "mounts": ["*"]},
        "reader": {"password_hash": hash_password("r"), "mounts": ["*"], "read_only": True},
    }
    gw = make_gateway(
        download="proxy", read_only=False, users=users, server={"max_upload_size": 1000}
    )
    add_file(emulator, "locked.txt", b"old")
    lockinfo = (
        b'<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/>'
        b"</D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>"
    )
    lock = requests.request("LOCK", gw.url + "/pikpak/locked.txt", data=lockinfo, auth=gw.auth)
    assert lock.status_code == 200
    head = "PUT /pikpak/{} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n{}"
    head += "Expect: 100-continue\r\n\r\n"
    alice = f"Authorization: {basic()}\r\n"
    # Without credentials, as a read-only user, to a file another client locked, or larger
    # than the gateway takes: the final answer comes first, and the client never sends its body.
    for name, size, auth, status in (
        ("new.txt", 5, "", b"401"),
        ("new.txt", 5, f"Authorization: {basic('reader', 'r')}\r\n", b"403"),
        ("locked.txt", 5, alice, b"423"),
        ("new.txt", 5000, alice, b"413"),
    ):
        with connect(gw) as sock:
            sock.sendall(head.format(name, size, auth).encode())
            assert read_status(sock).startswith(b"HTTP/1.1 " + status + b" "), name
    # With credentials and no lock in the way, the client is invited and its body stored.
    with connect(gw) as sock:
        sock.sendall(head.format("new.txt", 5, alice).encode())
        assert read_status(sock) == b"HTTP/1.1 100 Continue\r\n"
        assert sock.recv(2) == b"\r\n"
        sock.sendall(b"hello")
        assert read_status(sock).startswith(b"HTTP/1.1 201 ")
    assert requests.get(gw.url + "/pikpak/new.txt", auth=gw.auth).content == b"hello"
    assert requests.get(gw.url + "/pikpak/locked.txt", auth=gw.auth).content == b"old"


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_get_or_head_with_a_body_is_answered_and_its_body_ignored(emulator, make_gateway, method):
    gw = make_gateway(download="proxy")
    add_file(emulator, "a.txt", b"hello")
    conn = http_conn(gw)
    conn.request(method, "/pikpak/a.txt", body=b'{"some": "json"}', headers=AUTH)
    resp = conn.getresponse()
    assert resp.status == 200, resp.read()
    assert resp.read() == (b"hello" if method == "GET" else b"")
    # ... and the connection is still good for the next request (the body was read).
    conn.request("GET", "/pikpak/a.txt", headers=AUTH)
    resp = conn.getresponse()
    assert (resp.status, resp.read()) == (200, b"hello")
    conn.close()
    # A chunked body too.
    answer = exchange(
        gw,
        f"{method} /pikpak/a.txt HTTP/1.1\r\nHost: x\r\nAuthorization: {basic()}\r\n".encode()
        + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer[:300]


# --- the last-resort guard -----------------------------------------------------------------------


def test_an_unexpected_error_is_a_plain_500_with_the_traceback_only_in_the_log(
    emulator, make_gateway, monkeypatch, caplog
):
    add_file(emulator, "a.bin")
    gw = make_gateway(download="proxy")

    def broken(*_a, **_k):
        raise RuntimeError("secret detail of the failure")

    # Deep in the provider, behind WsgiDAV's middleware...
    monkeypatch.setattr(DriveTree, "resolve", broken)
    resp = requests.get(gw.url + "/pikpak/a.bin", auth=gw.auth)
    assert resp.status_code == 500 and resp.text == "internal error\n"
    # ... and in front of it (the healthz layer)
    monkeypatch.setattr("pikdav.dav.app.Healthz.__call__", broken)
    resp = requests.get(gw.url + "/healthz")
    assert resp.status_code == 500 and resp.text == "internal error\n"
    assert caplog.text.count("RuntimeError: secret detail of the failure") == 2
    assert "Traceback" in caplog.text


def test_an_error_in_the_middle_of_a_stream_ends_the_connection(
    emulator, make_gateway, monkeypatch, caplog
):
    add_file(emulator, "a.bin", DATA * 4)
    gw = make_gateway(download="proxy")
    calls = []
    for reader in (LinkReader, SegmentedReader):  # one connection, or several

        def failing_read(self, size=-1, real_read=reader.read):
            calls.append(size)
            if len(calls) > 1:
                raise RuntimeError("broken reader")
            return real_read(self, size)

        monkeypatch.setattr(reader, "read", failing_read)
    resp = requests.get(gw.url + "/pikpak/a.bin", auth=gw.auth, stream=True)
    assert resp.status_code == 200
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        resp.content  # noqa: B018 - the short body is what the client notices
    assert "start_response" not in caplog.text
    assert "the answer broke off" in caplog.text


# --- status lines and streams that give up -------------------------------------------------------


def test_every_status_line_has_its_reason_phrase(emulator, make_gateway):
    gw = make_gateway(download="proxy")
    # PikPak rate-limits every listing (the gateway retries, then gives up with a 503)
    rule = {"path": "^/drive/v1/files", "rate_limit": {"retry_after": 0}}
    control(emulator.base_url, "faults", rule)
    request = f"PROPFIND /pikpak/ HTTP/1.1\r\nHost: x\r\nDepth: 1\r\nAuthorization: {basic()}"
    answer = exchange(gw, f"{request}\r\n\r\n".encode(), timeout=30)
    assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n"), answer[:200]
    assert b"\r\nRetry-After: " in answer
    answer = exchange(gw, b"GET /pikpak/ HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 401 Unauthorized\r\n"), answer[:200]


def test_a_stream_the_cdn_gives_up_on_ends_short_with_one_warning(emulator, make_gateway, caplog):
    caplog.set_level(logging.INFO)
    add_file(emulator, "long.bin", DATA * 4)
    gw = make_gateway(download="proxy")
    control(emulator.base_url, "faults", {"path": "^/download", "drop_after": 100_000})
    caplog.clear()
    resp = requests.get(gw.url + "/pikpak/long.bin", auth=gw.auth, stream=True)
    assert resp.status_code == 200
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        resp.content  # noqa: B018 - a short body, then the connection closes
    lines = wait_until(lambda: request_lines(caplog, "GET", 1), "the request line", 10)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "giving up" in warnings[0].getMessage(), warnings
    assert "Traceback" not in caplog.text and "start_response" not in caplog.text
    # The request's log line says 200 (the status sent before the body broke), never 500;
    # its time in milliseconds may be anything, 500 too.
    statuses = [line.split(" ")[3] for line in lines]
    assert statuses == ["200"], statuses


# --- a browser at a folder -----------------------------------------------------------------------


def test_a_browser_at_a_folder_gets_a_listing_with_links_that_download(emulator, make_gateway):
    for path, size in (("Movies/Big Buck & Bunny.mkv", 3 << 20), ("Movies/notes.txt", 5)):
        control(emulator.base_url, "files", {"username": PIKPAK_USER, "path": path, "size": size})
    control(
        emulator.base_url,
        "files",
        {"username": PIKPAK_USER, "path": "Movies/Extras/a.txt", "size": 1},
    )
    gw = make_gateway(download="proxy")
    assert requests.get(gw.url + "/").status_code == 401
    root = requests.get(gw.url + "/", auth=gw.auth)
    assert root.status_code == 200 and root.headers["Content-Type"].startswith("text/html")
    assert '<a href="/pikpak/">pikpak/</a>' in root.text
    page = requests.get(gw.url + "/pikpak/Movies/", auth=gw.auth)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    names = re.findall(r'<a href="([^"]+)">([^<]+)</a>', page.text)
    assert names == [
        ("/pikpak/", "../"),
        ("/pikpak/Movies/Extras/", "Extras/"),
        ("/pikpak/Movies/Big%20Buck%20%26%20Bunny.mkv", "Big Buck &amp; Bunny.mkv"),
        ("/pikpak/Movies/notes.txt", "notes.txt"),
    ]
    assert 'title="3145728">3.0 MiB</td>' in page.text and 'title="5">5 B</td>' in page.text
    assert re.search(r"<td>20\d\d-\d\d-\d\d \d\d:\d\d</td>", page.text)
    # The link downloads the file.
    film = requests.get(gw.url + names[2][0], auth=gw.auth)
    assert film.status_code == 200 and len(film.content) == 3 << 20
    assert f"{gw.url}/pikpak/Movies/" in page.text  # how to open it in a DAV client
    assert "WsgiDav" not in page.text and "middleware" not in page.text
    # DAV clients see nothing change: PROPFIND lists the folder as before.
    listing = requests.request(
        "PROPFIND", gw.url + "/pikpak/Movies/", auth=gw.auth, headers={"Depth": "1"}
    )
    assert listing.status_code == 207 and "notes.txt" in listing.text


def test_the_request_line_names_the_client_behind_a_trusted_proxy(make_gateway, caplog):
    """The client's address is worked out once, at the front door, and the log line, the
    bans, the caps and the download policy all read it: behind a trusted proxy, the address
    the proxy forwarded."""
    gw = make_gateway(download="proxy", server={"trusted_proxies": ["127.0.0.1"]})
    with caplog.at_level(logging.INFO, logger="pikdav.requests"):
        for forwarded in ("203.0.113.9", "198.51.100.7, 127.0.0.1"):
            resp = requests.request(
                "PROPFIND",
                gw.url + "/pikpak/",
                headers={"Depth": "0", "X-Forwarded-For": forwarded},
                auth=gw.auth,
                timeout=30,
            )
            assert resp.status_code == 207
        # The line is written once the answer is out, so the client can read the answer first.
        lines = wait_until(
            lambda: request_lines(caplog, "PROPFIND /pikpak/", 2), "two request lines", 10
        )
    assert [line.split()[0] for line in lines] == ["203.0.113.9", "198.51.100.7"], lines
