"""A loopback HTTP CONNECT proxy that tunnels PikPak host names to the emulator.

rclone's pikpak backend hard-codes ``https://*.mypikpak.com`` URLs.  Running rclone
with ``HTTPS_PROXY`` pointing here makes every such connection a CONNECT tunnel,
and this proxy ignores the requested host:port and connects the tunnel to the
emulator's single TLS port instead.  The TLS session itself is end-to-end between
rclone and the emulator, so SNI and the Host header still carry the real names.
"""

from __future__ import annotations

import logging
import re
import socket
import socketserver
import threading
from collections import Counter
from types import TracebackType
from typing import Any

log = logging.getLogger(__name__)

#: Host names tunnelled by default: mypikpak.com / mypikpak.net and any subdomain.
DEFAULT_HOST_PATTERN = r"(?:[^/\s]+\.)?mypikpak\.(?:com|net)"

_BUFSIZE = 256 * 1024
_MAX_HEADER = 64 * 1024
_HANDSHAKE_TIMEOUT = 30.0
_CONNECT_TIMEOUT = 10.0


def _split_authority(authority: str) -> tuple[str, int] | None:
    """Parse ``host:port`` / ``[v6]:port`` from a CONNECT request target."""
    m = re.fullmatch(r"\[([^\]]+)\]:(\d+)|([^:\[\]]+):(\d+)", authority)
    if not m:
        return None
    host = m.group(1) or m.group(3)
    port = int(m.group(2) or m.group(4))
    if not 0 < port < 65536:
        return None
    return host.lower().rstrip("."), port


def _close_quietly(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass


def _shutdown_quietly(sock: socket.socket, how: int) -> None:
    try:
        sock.shutdown(how)
    except OSError:
        pass


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    # rclone opens many connections at once; the default backlog of 5 drops some.
    request_queue_size = 128
    block_on_close = False

    def __init__(self, proxy: ConnectProxy) -> None:
        self.proxy = proxy
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.exception("connect proxy: unhandled error for %s", client_address)


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        self.server.proxy._handle(self.request)


class ConnectProxy:
    """Threaded HTTP CONNECT proxy on 127.0.0.1 tunnelling allowed hosts to ``upstream``.

    ``host_pattern`` is matched (full match, case-insensitive) against the host part
    of the CONNECT target; the requested port is ignored.
    """

    def __init__(
        self,
        upstream: tuple[str, int],
        host_pattern: str | re.Pattern[str] = DEFAULT_HOST_PATTERN,
        source_address: str | None = None,
    ) -> None:
        """``source_address``: the address tunnels leave from, so that the server behind
        can tell a call that came through the proxy from one that did not."""
        self.upstream = upstream
        self.source = (source_address, 0) if source_address else None
        self._pattern = (
            host_pattern
            if isinstance(host_pattern, re.Pattern)
            else re.compile(host_pattern, re.IGNORECASE)
        )
        self._lock = threading.Lock()
        self._tunnels = 0
        self._rejected = 0
        self._bytes_up = 0
        self._bytes_down = 0
        self._hosts: Counter[str] = Counter()
        self._active: set[tuple[socket.socket, socket.socket]] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> ConnectProxy:
        if self._server is not None:
            return self
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"connect-proxy:{self.port}",
            daemon=True,
        )
        self._thread.start()
        log.info("connect proxy on %s -> %s:%d", self.url, *self.upstream)
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        # Tear down open tunnels so their relay threads end and no sockets leak.
        with self._lock:
            active = list(self._active)
        for pair in active:
            for sock in pair:
                _shutdown_quietly(sock, socket.SHUT_RDWR)
        log.info("connect proxy stopped (%s)", self.stats())

    def __enter__(self) -> ConnectProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("proxy not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def allows(self, host: str) -> bool:
        return self._pattern.fullmatch(host.lower().rstrip(".")) is not None

    def stats(self) -> dict[str, Any]:
        """Snapshot of the counters: tunnels opened, rejections, bytes, per-host tunnels."""
        with self._lock:
            return {
                "tunnels": self._tunnels,
                "rejected": self._rejected,
                "active": len(self._active),
                "bytes_up": self._bytes_up,
                "bytes_down": self._bytes_down,
                "hosts": dict(self._hosts),
            }

    # -- per connection --------------------------------------------------------

    def _handle(self, client: socket.socket) -> None:
        client.settimeout(_HANDSHAKE_TIMEOUT)
        try:
            head, leftover = self._read_head(client)
        except (OSError, ValueError) as e:
            log.debug("connect proxy: bad request head: %s", e)
            self._reply(client, "400 Bad Request")
            return
        if head is None:  # client went away before sending a request
            return
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = request_line.split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            self._reply(client, "400 Bad Request")
            return
        method, target = parts[0], parts[1]
        if method.upper() != "CONNECT":
            self._reply(client, "405 Method Not Allowed", "Allow: CONNECT\r\n")
            return
        hostport = _split_authority(target)
        if hostport is None or not self.allows(hostport[0]):
            with self._lock:
                self._rejected += 1
            log.warning("connect proxy: refusing tunnel to %s", target)
            self._reply(client, "403 Forbidden")
            return
        host = hostport[0]
        try:
            upstream = socket.create_connection(
                self.upstream, timeout=_CONNECT_TIMEOUT, source_address=self.source
            )
        except OSError as e:
            log.warning("connect proxy: upstream %s:%d unreachable: %s", *self.upstream, e)
            self._reply(client, "502 Bad Gateway")
            return
        try:
            self._tunnel(client, upstream, host, target, leftover)
        finally:
            _close_quietly(upstream)

    @staticmethod
    def _read_head(client: socket.socket) -> tuple[bytes | None, bytes]:
        """Read up to the blank line; return (head, bytes already received after it)."""
        buf = b""
        while b"\r\n\r\n" not in buf:
            if len(buf) > _MAX_HEADER:
                raise ValueError("request head too large")
            chunk = client.recv(8192)
            if not chunk:
                if buf:
                    raise ValueError("connection closed mid-request")
                return None, b""
            buf += chunk
        head, _, leftover = buf.partition(b"\r\n\r\n")
        return head, leftover

    @staticmethod
    def _reply(client: socket.socket, status: str, extra_headers: str = "") -> None:
        msg = f"HTTP/1.1 {status}\r\n{extra_headers}Content-Length: 0\r\nConnection: close\r\n\r\n"
        try:
            client.sendall(msg.encode("ascii"))
        except OSError:
            pass

    def _tunnel(
        self,
        client: socket.socket,
        upstream: socket.socket,
        host: str,
        target: str,
        leftover: bytes,
    ) -> None:
        for sock in (client, upstream):
            sock.settimeout(None)
            # TLS records are small and latency-bound; Nagle would add stalls.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self._tunnels += 1
            self._hosts[host] += 1
            self._active.add((client, upstream))
        log.debug("connect proxy: tunnel %s -> %s:%d", target, *self.upstream)
        try:
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if leftover:  # client pipelined data (e.g. a ClientHello) after the request
                upstream.sendall(leftover)
                with self._lock:
                    self._bytes_up += len(leftover)
        except OSError:
            with self._lock:
                self._active.discard((client, upstream))
            return
        # One thread per direction: blocking sendall in one direction can never
        # stall the other, so a peer that writes before reading cannot deadlock us.
        down = threading.Thread(
            target=self._relay,
            args=(upstream, client, False),
            name=f"tunnel-down:{host}",
            daemon=True,
        )
        down.start()
        self._relay(client, upstream, True)
        down.join()
        with self._lock:
            self._active.discard((client, upstream))

    def _relay(self, src: socket.socket, dst: socket.socket, up: bool) -> None:
        buf = bytearray(_BUFSIZE)
        view = memoryview(buf)
        try:
            while True:
                n = src.recv_into(buf)
                if n == 0:
                    # Half-close: pass EOF on, keep the other direction running.
                    _shutdown_quietly(dst, socket.SHUT_WR)
                    return
                dst.sendall(view[:n])
                with self._lock:
                    if up:
                        self._bytes_up += n
                    else:
                        self._bytes_down += n
        except OSError as e:
            log.debug("connect proxy: relay ended: %s", e)
            # A reset on either side kills the whole tunnel; wake the other thread.
            _shutdown_quietly(src, socket.SHUT_RDWR)
            _shutdown_quietly(dst, socket.SHUT_RDWR)
        finally:
            view.release()
