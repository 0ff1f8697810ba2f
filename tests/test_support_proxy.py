"""Self-test of the TLS + CONNECT-proxy plumbing used to point rclone at the emulator."""

from __future__ import annotations

import http.server
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.connect_proxy import ConnectProxy
from tests.support.tlsca import TestCA, make_test_ca


class _HelloHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = f"hello {self.headers.get('Host', '')}".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest output clean


class _TLSServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, ctx: ssl.SSLContext) -> None:
        self.ctx = ctx
        super().__init__(("127.0.0.1", 0), _HelloHandler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = super().get_request()
        # Handshake lazily in the handler thread, not in the accept loop.
        return self.ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr


@pytest.fixture
def ca(tmp_path: Path) -> TestCA:
    return make_test_ca(tmp_path / "ca")


@pytest.fixture
def tls_server(ca: TestCA) -> Iterator[tuple[str, int]]:
    server = _TLSServer(ca.server_ssl_context())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield ("127.0.0.1", server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def test_tunnels_pikpak_hosts_to_upstream(ca: TestCA, tls_server: tuple[str, int]) -> None:
    with ConnectProxy(tls_server) as proxy, requests.Session() as session:
        session.trust_env = False  # ignore any proxy settings of the developer's shell
        proxies = {"https": proxy.url}
        for url, host in [
            ("https://api-drive.mypikpak.com/x", "api-drive.mypikpak.com"),
            ("https://bucket-x.mypikpak.com/y", "bucket-x.mypikpak.com"),
        ]:
            r = session.get(url, proxies=proxies, verify=str(ca.ca_cert), timeout=10)
            assert r.status_code == 200
            assert r.text == f"hello {host}"

        stats = proxy.stats()
        assert stats["tunnels"] == 2
        assert stats["hosts"] == {"api-drive.mypikpak.com": 1, "bucket-x.mypikpak.com": 1}

        with pytest.raises(requests.exceptions.ProxyError):
            session.get("https://example.org/", proxies=proxies, verify=str(ca.ca_cert), timeout=10)
        stats = proxy.stats()
        assert stats["tunnels"] == 2
        assert stats["rejected"] == 1
        assert "example.org" not in stats["hosts"]


def test_rejects_plain_requests_and_foreign_hosts(tls_server: tuple[str, int]) -> None:
    with ConnectProxy(tls_server) as proxy:
        assert proxy.allows("mypikpak.com")
        assert proxy.allows("dl-a1b2.mypikpak.com")
        assert proxy.allows("user.mypikpak.net")
        assert not proxy.allows("evilmypikpak.com")
        assert not proxy.allows("mypikpak.com.example.org")

        def ask(request: bytes) -> bytes:
            with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as s:
                s.sendall(request)
                return s.recv(4096)

        assert ask(b"GET http://mypikpak.com/ HTTP/1.1\r\nHost: mypikpak.com\r\n\r\n").startswith(
            b"HTTP/1.1 405 "
        )
        assert ask(b"CONNECT 127.0.0.1:22 HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 403 ")
        assert proxy.stats()["tunnels"] == 0


def test_large_transfer_and_half_close() -> None:
    """Bytes pass unchanged both ways, and EOF from the client reaches upstream."""
    payload = bytes(range(256)) * (16 * 1024 * 4)  # 16 MiB
    listener = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def echo_after_eof() -> None:
        conn, _ = listener.accept()
        with conn:
            chunks = []
            while chunk := conn.recv(256 * 1024):
                chunks.append(chunk)
            data = b"".join(chunks)
            received.append(data)
            conn.sendall(data[::-1])  # answer only after the client's half-close

    server = threading.Thread(target=echo_after_eof, daemon=True)
    server.start()
    with listener, ConnectProxy(listener.getsockname()[:2]) as proxy:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=30) as s:
            s.sendall(b"CONNECT s3.mypikpak.com:443 HTTP/1.1\r\nHost: s3.mypikpak.com:443\r\n\r\n")
            head = b""
            while b"\r\n\r\n" not in head:
                head += s.recv(1)
            assert head.startswith(b"HTTP/1.1 200 ")
            sender = threading.Thread(
                target=lambda: (s.sendall(payload), s.shutdown(socket.SHUT_WR)), daemon=True
            )
            sender.start()
            chunks = []
            while chunk := s.recv(256 * 1024):
                chunks.append(chunk)
            sender.join()
        server.join(timeout=30)
        assert received == [payload]
        assert b"".join(chunks) == payload[::-1]
        stats = proxy.stats()
        assert stats["bytes_up"] == len(payload)
        assert stats["bytes_down"] == len(payload)
