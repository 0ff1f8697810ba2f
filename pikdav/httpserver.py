"""cheroot as pikdav runs it: the HTTP server of the gateway and of the emulator.

What differs from a plain ``cheroot.wsgi.Server``, and why:

- **A request's head is read before a worker takes it.** cheroot hands every new connection
  to a worker thread at once, and the worker then waits for the request line and headers with
  the socket's timeout per read: a client sending one header line every few seconds (slowloris),
  or nothing at all, holds a worker for as long as it likes, and a few dozen such connections
  hold them all. Here the accepting thread reads what has arrived without blocking, and queues
  the connection for a worker only once its head (and, with TLS, its handshake) is complete.
  A head that is not complete ``head_timeout`` seconds after the connection opened (or after its
  first byte, on a kept-alive connection) is answered 408 and closed.
- **Separate timeouts for reading and for sending.** A stalled request body ends after
  ``body_timeout`` seconds without a byte; sending may wait ``send_timeout`` (a player that
  pauses a stream stops reading for minutes and must get the rest when it resumes).
- **Large blocks are sent without copying them** (cheroot copied each block twice; for the
  1 MiB blocks of a stream that was about a sixth of a server's CPU).
- **A response cut short closes its connection**: when fewer bytes than the Content-Length went
  out, or the app asks for it (``environ[END_CONNECTION]``), the client sees a short body instead
  of reading the next answer into it.
- **A bounded stop.** ``stop()`` tells streams to end (``environ[STOPPING]``), stops accepting,
  closes idle connections, gives running requests a moment, then shuts the sockets of the rest
  and returns within about ``shutdown_timeout`` seconds whatever is still running (workers are
  daemon threads, so a request stuck upstream cannot keep the process alive).
- **A clear reason when the port cannot be had** (``ListenError``; cheroot's own error has none).
"""

from __future__ import annotations

import _pyio
import itertools
import logging
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable

from cheroot import wsgi
from cheroot.connections import ConnectionManager
from cheroot.makefile import MakeFile, StreamReader, StreamWriter
from cheroot.server import HTTPConnection
from cheroot.ssl.builtin import BuiltinSSLAdapter
from cheroot.workers import threadpool

log = logging.getLogger(__name__)

STOPPING = "pikdav.stopping"  # environ key: the server's StopSignal
END_CONNECTION = "pikdav.end_connection"  # environ key: close the connection after this answer

_DIRECT = 65536  # blocks at least this large are sent without copying
_READ_AHEAD = 16384
_DRAIN_LIMIT = 65536  # an unread request body up to this size is read to keep the connection


class StopSignal:
    """Set once when the server stops; whoever waits on something slow subscribes a callback
    that interrupts it (a proxied stream closes its upstream socket)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._set = False
        self._callbacks: dict[int, Callable[[], None]] = {}
        self._ids = itertools.count()

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        with self._lock:
            if self._set:
                return
            self._set = True
            callbacks = list(self._callbacks.values())
            self._callbacks.clear()
        for callback in callbacks:
            try:
                callback()
            except Exception:  # one stream's trouble must not stop the others from ending
                log.debug("a stop callback failed", exc_info=True)

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback` when the stop begins (at once if it has); returns the unsubscriber."""
        with self._lock:
            if not self._set:
                key = next(self._ids)
                self._callbacks[key] = callback
                return lambda: self._callbacks.pop(key, None)
        callback()
        return lambda: None


class ListenError(OSError):
    """The server cannot listen on its address; `reason` says why in plain words."""

    def __init__(self, host: str, port: int, reason: str) -> None:
        super().__init__(f"cannot listen on {host}:{port}: {reason}")
        self.host, self.port, self.reason = host, port, reason


# --- the connection ------------------------------------------------------------------------------

_WAITING, _COMPLETE, _CLOSED = "waiting", "complete", "closed"


class _SocketReader(_pyio.RawIOBase):
    """The raw reader under a connection's rfile: first the bytes the accepting thread read
    ahead, then the socket, with the body timeout."""

    def __init__(self, conn: Connection, sock: socket.socket) -> None:
        super().__init__()
        self._conn = conn
        self._sock = sock
        self.ahead = bytearray()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.ahead:
            n = min(len(buffer), len(self.ahead))
            buffer[:n] = self.ahead[:n]
            del self.ahead[:n]
            return n
        self._conn.use_timeout(self._conn.server.body_timeout)
        return self._sock.recv_into(buffer)

    def close(self) -> None:  # the connection closes the socket itself
        super().close()


class _SocketWriter(_pyio.RawIOBase):
    def __init__(self, conn: Connection, sock: socket.socket) -> None:
        super().__init__()
        self._conn = conn
        self._sock = sock

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._conn.use_timeout(self._conn.server.send_timeout)
        return self._sock.send(data)


class _RequestReader(StreamReader):
    def __init__(self, raw: _SocketReader, bufsize: int) -> None:
        _pyio.BufferedReader.__init__(self, raw, bufsize)
        self.bytes_read = 0

    def has_data(self) -> bool:
        return len(self._read_buf) > self._read_pos or bool(self.raw.ahead)

    def buffered(self) -> bytes:
        """What has been read from the socket and not yet consumed."""
        return bytes(self._read_buf[self._read_pos :]) + bytes(self.raw.ahead)


class DirectWriter(StreamWriter):
    """cheroot's socket writer, sending large blocks straight from the caller's buffer."""

    def __init__(self, raw, bufsize: int = _pyio.DEFAULT_BUFFER_SIZE) -> None:
        _pyio.BufferedWriter.__init__(self, raw, bufsize)
        self.bytes_written = 0

    def write(self, val, *args, **kwargs):
        if len(val) < _DIRECT:
            return super().write(val, *args, **kwargs)
        self._checkClosed()
        with self._write_lock:
            self._flush_unlocked()
            view = memoryview(val)
            while view:
                try:
                    sent = self.raw.write(view)
                except BlockingIOError as exc:
                    sent = exc.characters_written
                view = view[sent or 0 :]
        self.bytes_written += len(val)
        return len(val)


class Connection(HTTPConnection):
    """A client connection: read-ahead of the request head, per-direction timeouts."""

    def __init__(self, server, sock, makefile=MakeFile) -> None:
        super().__init__(server, sock, makefile)
        self.rfile = _RequestReader(_SocketReader(self, sock), self.rbufsize)
        self.wfile = DirectWriter(_SocketWriter(self, sock), self.wbufsize)
        self._timeout: float | None = sock.gettimeout()
        self.opened = time.monotonic()
        self.fresh = True  # no request yet
        self.head_deadline: float | None = None
        # With our adapter the TLS handshake is still to do (see _TlsAdapter).
        self.handshaking = isinstance(server.ssl_adapter, _TlsAdapter)

    def use_timeout(self, seconds: float) -> None:
        if seconds != self._timeout:
            self.socket.settimeout(seconds)
            self._timeout = seconds

    def read_ahead(self) -> str:
        """Read what has arrived without blocking: ``_COMPLETE`` when a whole request head is
        buffered (or more than a head may be: cheroot then answers 413/414), ``_CLOSED`` when
        the client has gone, else ``_WAITING``."""
        if self.handshaking:
            state = self._continue_handshake()
            if state != _COMPLETE:
                return state
        limit = self.server.max_request_header_size or (1 << 20)
        ahead = self.rfile.raw.ahead
        eof = False
        chunk = bytearray(_READ_AHEAD)
        try:
            self.use_timeout(0.0)
            while len(ahead) <= limit:
                n = self.socket.recv_into(chunk)
                if n == 0:
                    eof = True
                    break
                ahead += chunk[:n]
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass
        except OSError:
            return _CLOSED
        pending = self.rfile.buffered()
        if _head_complete(pending) or len(pending) > limit:
            return _COMPLETE
        return _CLOSED if eof else _WAITING

    def _continue_handshake(self) -> str:
        try:
            self.use_timeout(0.0)
            self.socket.do_handshake()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return _WAITING
        except ssl.SSLError as exc:
            if "http request" in str(exc).lower():
                self._answer_plain_http()
            return _CLOSED
        except OSError:
            return _CLOSED
        self.handshaking = False
        self.ssl_env = self.server.ssl_adapter.get_environ(self.socket)
        return _COMPLETE

    def _answer_plain_http(self) -> None:
        body = b"This port speaks HTTPS; the client sent plain HTTP.\n"
        self._send_quietly(b"400 Bad Request", body)

    def refuse_late_head(self) -> None:
        if not self.handshaking:  # before TLS is up, a plain-text answer is only noise
            self._send_quietly(
                b"408 Request Timeout", b"The request headers did not arrive in time.\n"
            )

    def _send_quietly(self, status: bytes, body: bytes) -> None:
        """A last answer on a connection about to close, if the socket takes it at once."""
        data = (
            b"HTTP/1.1 " + status + b"\r\nContent-Type: text/plain\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body
        )  # fmt: skip
        try:
            self.use_timeout(0.0)
            if self.handshaking:
                socket.socket.send(self.socket, data)  # the TCP socket under the TLS one
            else:
                self.socket.send(data)
        except (OSError, ValueError):
            pass

    def communicate(self) -> bool:
        self.fresh = False
        self.head_deadline = None
        return super().communicate()

    def force_close(self) -> None:
        """Wake whatever the worker is blocked on with this client (a read or a send)."""
        try:
            self.socket.shutdown(socket.SHUT_RDWR)
        except (OSError, ValueError):
            pass


def _head_complete(data: bytes) -> bool:
    # cheroot skips one empty line before a request; bare-LF heads get cheroot's 400.
    return b"\r\n\r\n" in data or b"\n\n" in data


# --- the gateway: environ hooks, and the close of a short answer ---------------------------------


class _Gateway(wsgi.Gateway_10):
    def get_environ(self) -> dict:
        env = super().get_environ()
        env[STOPPING] = self.req.server.stopping
        env[END_CONNECTION] = self.end_connection
        return env

    def end_connection(self) -> None:
        self.req.close_connection = True
        # No closing chunk either: a chunked answer cut short must look cut to the client.
        self.req.chunked_write = False

    def respond(self) -> None:
        self._declared: int | None = None
        self._sent = 0
        try:
            super().respond()
        finally:
            short = self._declared is not None and self._sent < self._declared
            no_body = self.req.method == b"HEAD" or self.req.status[:3] in (b"204", b"304")
            if short and not no_body:
                self.end_connection()

    def start_response(self, status, headers, exc_info=None):
        write = super().start_response(status, headers, exc_info)
        self._declared = self.remaining_bytes_out
        req = self.req
        if not req.sent_headers:
            # cheroot reads an unread request body whole into memory before it answers (a
            # 1 GB PUT answered 401 would cost 1 GB), and keeps a connection whose chunked
            # body was not read (its rest would be taken for the next request): close instead.
            if req.chunked_read:
                unread = not getattr(req.rfile, "closed", True)
            else:
                unread = getattr(req.rfile, "remaining", 0) > _DRAIN_LIMIT
            if unread:
                req.close_connection = True
        return write

    def write(self, chunk) -> None:
        super().write(chunk)
        self._sent += len(chunk)


# --- the thread pool -----------------------------------------------------------------------------


class _Workers(threadpool.ThreadPool):
    """cheroot's pool with daemon workers and a stop that does not wait forever.

    cheroot's own `stop` joins a worker without a timeout once its grace period is over; a
    worker that never got its shutdown request (see the CLI's signal handling) or is stuck
    upstream kept the process alive for good."""

    _names = itertools.count(1)

    def _spawn_worker(self) -> threadpool.WorkerThread:
        worker = threadpool.WorkerThread(self.server)
        worker.name = f"pikdav-worker-{next(self._names)}"
        worker.daemon = True
        worker.start()
        return worker

    def stop(self, timeout: float = 3.0) -> list[threading.Thread]:
        """Stop every worker within `timeout` seconds; return those that did not stop."""
        start = time.monotonic()
        grace, deadline = start + timeout * 0.6, start + timeout
        workers, self._threads[:] = list(self._threads), []
        for _ in workers:
            self._queue.put(threadpool._SHUTDOWNREQUEST)
        for worker in workers:
            worker.join(max(0.0, grace - time.monotonic()))
        for worker in workers:
            conn = worker.conn
            if worker.is_alive() and isinstance(conn, Connection):
                conn.force_close()
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        stuck = [w for w in workers if w.is_alive()]
        if stuck:
            log.warning("%d request(s) still running at the stop; leaving them", len(stuck))
        return stuck


# --- the accepting thread's connection manager ---------------------------------------------------


class _Connections(ConnectionManager):
    """cheroot's selector loop, also holding connections that wait for their request head."""

    def wait_for_head(self, conn: Connection) -> None:
        conn.last_used = time.time()
        self._selector.register(conn.socket.fileno(), selectors.EVENT_READ, data=conn)

    def _expire(self, threshold: float) -> None:
        now = time.monotonic()
        late = [
            (fd, conn)
            for fd, conn in self._selector.connections
            if conn is not self.server
            and getattr(conn, "head_deadline", None) is not None
            and conn.head_deadline <= now
        ]
        for fd, conn in late:
            self._selector.unregister(fd)
            conn.refuse_late_head()
            conn.close()
        if late:
            log.info(
                "closed %d connection(s) whose request headers did not arrive within %.0f s",
                len(late),
                self.server.head_timeout,
            )
        super()._expire(threshold)

    @property
    def can_add_keepalive_connection(self) -> bool:
        # Connections still sending their head are not idle keep-alives: they must not make
        # every answer close its connection.
        limit = self.server.keep_alive_conn_limit
        if limit is None:
            return True
        waiting = sum(
            1
            for _, conn in self._selector.connections
            if getattr(conn, "head_deadline", None) is not None
        )
        return self._num_connections - waiting < limit


class _TlsAdapter(BuiltinSSLAdapter):
    """Wraps without the handshake: `Connection.read_ahead` completes it without blocking
    (cheroot's adapter shakes hands in the accepting thread, where one silent client stopped
    every other from connecting for the whole socket timeout)."""

    def wrap(self, sock: socket.socket):
        return self.context.wrap_socket(sock, do_handshake_on_connect=False, server_side=True), {}


class Server(wsgi.Server):
    """``cheroot.wsgi.Server`` with the changes of this module's docstring."""

    head_timeout = 20.0  # request line and headers, from the first byte (or the connection)
    body_timeout = 60.0  # a request body that sends nothing for this long has stalled
    send_timeout = 300.0  # a client that reads nothing for this long has gone
    shutdown_timeout = 3.0  # running requests get ~60 % of it, then their sockets are shut

    def __init__(
        self,
        bind_addr: tuple[str, int],
        wsgi_app: Callable,
        numthreads: int = 10,
        server_name: str | None = None,
        request_queue_size: int = 5,
        timeout: float = 300,
    ) -> None:
        super().__init__(
            bind_addr,
            wsgi_app,
            numthreads=numthreads,
            server_name=server_name,
            request_queue_size=request_queue_size,
            timeout=timeout,
            shutdown_timeout=self.shutdown_timeout,
        )
        self.gateway = _Gateway
        self.ConnectionClass = Connection
        self.requests = _Workers(self, min=numthreads or 1)
        self.max_request_header_size = 256 << 10
        self.stopping = StopSignal()
        self._bind_error: OSError | None = None

    def use_tls(self, cert: str, key: str) -> None:
        self.ssl_adapter = _TlsAdapter(cert, key)

    def bind(self, family, type, proto=0):
        try:
            return super().bind(family, type, proto)
        except OSError as exc:
            self._bind_error = exc
            raise

    def prepare(self) -> None:
        self._bind_error = None
        try:
            super().prepare()
        except OSError as exc:
            host, port = self.bind_addr[:2]
            raise ListenError(host, port, _reason(self._bind_error or exc)) from None
        self._connections._selector.close()
        self._connections = _Connections(self)

    def process_conn(self, conn) -> None:
        """Queue a connection for a worker once its request head is in; until then it waits
        in the selector (see the module docstring)."""
        if not isinstance(conn, Connection):
            super().process_conn(conn)
            return
        state = conn.read_ahead()
        if state == _COMPLETE:
            conn.head_deadline = None
            super().process_conn(conn)
            return
        if state == _CLOSED or not self.ready:
            conn.close()
            return
        if conn.head_deadline is None and (conn.fresh or conn.rfile.has_data()):
            started = conn.opened if conn.fresh else time.monotonic()
            conn.head_deadline = started + self.head_timeout
        self._connections.wait_for_head(conn)

    def stop(self) -> None:
        if not self.ready:
            return
        self.stopping.set()  # streams end at once; the rest get the grace of _Workers.stop
        super().stop()


def _reason(exc: OSError) -> str:
    text = exc.strerror or str(exc)
    return text[:1].lower() + text[1:]


def keep_memory_flat() -> None:
    """Make glibc return large freed buffers to the system at once.

    Streams and uploads allocate and free 1 MiB blocks in many threads, and glibc gives
    threads heaps of their own (up to 8 per core) that keep freed blocks: the gateway's RSS
    grew by 100+ MiB during one 1 GiB upload. Two heaps keep it near the working set; a
    fixed mmap threshold did too, but made every block a fresh mapping and cost a second
    per GiB (see BENCHMARKS.md)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return  # not glibc: nothing to tune
    m_arena_max = -8
    libc.mallopt(m_arena_max, 2)
