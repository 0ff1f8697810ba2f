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
- **Separate timeouts for reading and for sending.** A request body has stalled when fewer
  than ``body_min_rate`` bytes a second arrived over ``body_timeout`` seconds of waiting for
  it (one byte every 10 s held a worker for good); sending may wait ``send_timeout`` (a
  player that pauses a stream stops reading for minutes and must get the rest when it
  resumes).
- **The body is invited only when the app reads it.** cheroot answered ``Expect:
  100-continue`` at once, before the app had checked credentials, locks or sizes; here
  ``100 Continue`` goes out at the first read of ``wsgi.input``, and an answer before it
  invites no body at all.
- **A request body that breaks HTTP's framing is a clear 400**: a ``Content-Length`` that is
  not a plain number (``-1`` waited for the body's end until the timeout), a chunk size that
  is not at most 16 hex digits (``fffffffffffffffffff`` was an OverflowError), a chunk-size
  line without end. A chunk is read in pieces, never whole into memory (:class:`MalformedBody`).
- **An answer given before the body was read still reaches the client** (a lingering
  close): the connection's sending side is shut after the answer, and what the client still
  sends is read and dropped by the accepting thread, up to ``drain_limit`` bytes or
  ``drain_timeout`` seconds, before the socket closes. Closing at once made the client's
  kernel throw the answer away (``connection was closed by server`` instead of ``423``).
- **The pool grows when every worker is busy**, up to ``max_threads``, and shrinks back when
  the load is gone: requests that hold a worker for long (paused players, slow uploads) do
  not leave the others waiting in the queue. Caps per user and per address, so that one
  client cannot take the pool, are the app's (:mod:`pikdav.dav.limits`).
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
from cheroot.errors import MaxSizeExceeded
from cheroot.makefile import MakeFile, StreamReader, StreamWriter
from cheroot.server import HTTPConnection, HTTPRequest
from cheroot.ssl.builtin import BuiltinSSLAdapter
from cheroot.workers import threadpool

log = logging.getLogger(__name__)

STOPPING = "pikdav.stopping"  # environ key: the server's StopSignal
END_CONNECTION = "pikdav.end_connection"  # environ key: close the connection after this answer

_DIRECT = 65536  # blocks at least this large are sent without copying
_READ_AHEAD = 16384
_DRAIN_LIMIT = 65536  # an unread request body up to this size is read to keep the connection
_CHUNK_LINE_MAX = 4096  # a chunk-size line with its extensions (clients send a few bytes)
_CHUNK_PIECE = 1 << 20  # a chunk is read in pieces of at most this many bytes
_TRAILERS_MAX = 64  # trailer lines after the last chunk


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
        self.begin_body()

    def readable(self) -> bool:
        return True

    def begin_body(self) -> None:
        """A new request begins: its body gets windows of its own (see `readinto`)."""
        self._waited = 0.0  # seconds spent waiting for the client in this window
        self._window_bytes = 0

    def readinto(self, buffer) -> int:
        if self.ahead:
            n = min(len(buffer), len(self.ahead))
            buffer[:n] = self.ahead[:n]
            del self.ahead[:n]
            return n
        # The body is judged in windows of body_timeout seconds spent waiting for the client
        # (not the app's own pauses): one that brought fewer than body_min_rate bytes a second
        # has stalled, however often a byte came.
        server = self._conn.server
        while True:
            if self._waited >= server.body_timeout:
                if self._window_bytes < server.body_min_rate * server.body_timeout:
                    raise TimeoutError("the request body stalled")
                self._waited, self._window_bytes = 0.0, 0
            self._conn.use_timeout(server.body_timeout - self._waited)
            started = time.monotonic()
            try:
                n = self._sock.recv_into(buffer)
            except TimeoutError:
                self._waited = server.body_timeout  # judged at the top
                continue
            self._waited += time.monotonic() - started
            self._window_bytes += n
            return n

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


class MalformedBody(ValueError):
    """A request body that breaks HTTP's framing; the text says how, for the client."""


class _ChunkedBody:
    """A chunked request body, read as the app asks for it (see the module docstring)."""

    def __init__(self, rfile: _RequestReader, maxlen: int) -> None:
        self._rfile = rfile
        self._maxlen = maxlen
        self._left = 0  # bytes of the current chunk not yet read
        self._chunk_end = False  # the CRLF after a chunk's data is still to read
        self.bytes_read = 0
        self.closed = False  # the last chunk and the trailers are read

    def _line(self) -> bytes:
        line = self._rfile.readline(_CHUNK_LINE_MAX + 1)
        if line.endswith(b"\n"):
            return line
        if len(line) > _CHUNK_LINE_MAX:
            raise MalformedBody(f"a chunk-size line is longer than {_CHUNK_LINE_MAX} bytes")
        raise ValueError("the body ended before its last chunk")

    def _next_chunk(self) -> bool:
        """Read the next chunk's size line; False after the last chunk."""
        if self._chunk_end:
            if self._rfile.read(2) != b"\r\n":
                raise MalformedBody("a chunk is longer than its size says")
            self._chunk_end = False
        size = self._line().split(b";", 1)[0].strip()
        if not 0 < len(size) <= 16 or size.strip(b"0123456789abcdefABCDEF"):
            raise MalformedBody("a chunk size is not a hexadecimal number of at most 16 digits")
        left = int(size, 16)
        if left == 0:
            for _ in range(_TRAILERS_MAX):
                if not self._line().strip():
                    self.closed = True
                    return False
            raise MalformedBody(f"more than {_TRAILERS_MAX} trailer lines")
        if self._maxlen and self.bytes_read + left > self._maxlen:
            raise MaxSizeExceeded("Request Entity Too Large", self._maxlen)
        self._left = left
        return True

    def read(self, size: int | None = -1) -> bytes:
        whole = size is None or size < 0
        data = bytearray()
        while whole or len(data) < size:
            if not self._left and (self.closed or not self._next_chunk()):
                break
            want = min(self._left, _CHUNK_PIECE, (1 << 62) if whole else size - len(data))
            piece = self._rfile.read(want)
            if not piece:
                raise ValueError("the body ended before its last chunk")
            data += piece
            self._left -= len(piece)
            self.bytes_read += len(piece)
            self._chunk_end = not self._left
        return bytes(data)

    def readline(self, size: int | None = -1) -> bytes:
        line = bytearray()
        while size is None or size < 0 or len(line) < size:
            byte = self.read(1)
            line += byte
            if not byte or byte == b"\n":
                break
        return bytes(line)

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        lines, total = [], 0
        while line := self.readline():
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                break
        return lines

    def close(self) -> None:
        pass


class _InvitedBody:
    """``wsgi.input`` of a request that asked to be invited (``Expect: 100-continue``):
    ``100 Continue`` goes out at the first read of the body (RFC 9110 §10.1.1)."""

    def __init__(self, body, invite: Callable[[], None]) -> None:
        self._body = body
        self._invite = invite

    def read(self, size: int | None = -1) -> bytes:
        if size != 0:
            self._invite()
        return self._body.read(size)

    def readline(self, size: int | None = -1) -> bytes:
        self._invite()
        return self._body.readline(size)

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        self._invite()
        return self._body.readlines(hint)

    def __iter__(self):
        while line := self.readline():
            yield line

    def close(self) -> None:
        self._body.close()


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


class _Request(HTTPRequest):
    """cheroot's request, with ``Expect: 100-continue`` kept for the first read of the body
    and a ``Content-Length`` that must be a plain number (see the module docstring)."""

    expect_continue = False  # the client waits for 100 Continue before its body
    invited = False  # ... and got it

    def header_reader(self, rfile, hdict):  # cheroot's is a callable object of the class
        hdict = HTTPRequest.header_reader(rfile, hdict)
        if hdict.get(b"Expect", b"").strip().lower() == b"100-continue":
            del hdict[b"Expect"]  # cheroot would answer it at once
            self.expect_continue = True
        return hdict

    def read_request_headers(self) -> bool:
        if not super().read_request_headers():
            return False
        length = self.inheaders.get(b"Content-Length")
        if length is not None and not length.strip().isdigit():
            self.close_connection = True
            self.simple_response(
                "400 Bad Request", "Content-Length must be a whole number of bytes."
            )
            return False
        return True

    def invite_body(self) -> None:
        if self.expect_continue and not self.invited and not self.sent_headers:
            self.invited = True
            self.conn.wfile.write(self.server.protocol.encode() + b" 100 Continue\r\n\r\n")


class Connection(HTTPConnection):
    """A client connection: read-ahead of the request head, per-direction timeouts."""

    RequestHandlerClass = _Request

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
        self.drain_at_close = False  # an answer went out before the request body was read
        self.draining = False  # the accepting thread reads and drops what the client sends
        self.drain_deadline = 0.0
        self._drain_left = 0

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

    def has_arrived(self, size: int) -> bool:
        """Whether `size` bytes are buffered, after reading what has arrived without blocking."""
        ahead = self.rfile.raw.ahead
        chunk = bytearray(_READ_AHEAD)
        try:
            self.use_timeout(0.0)
            while len(self.rfile.buffered()) < size:
                n = self.socket.recv_into(chunk)
                if n == 0:
                    break
                ahead += chunk[:n]
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass
        except (OSError, ValueError):
            return False
        return len(self.rfile.buffered()) >= size

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

    def close(self) -> None:
        if self.drain_at_close and self.server.ready and not self.draining:
            self.drain_at_close = False
            try:
                self.socket.shutdown(socket.SHUT_WR)  # the answer is whole: the client sees its end
            except (OSError, ValueError):
                pass
            else:
                self.draining = True
                self.drain_deadline = time.monotonic() + self.server.drain_timeout
                self._drain_left = self.server.drain_limit
                self.server._connections.wait_for_head(self)
                return
        super().close()

    def drain(self) -> bool:
        """Read and drop what has arrived without blocking; False once the client has gone,
        or sent as much as it may (the connection is then closed)."""
        chunk = bytearray(_READ_AHEAD)
        try:
            self.use_timeout(0.0)
            while self._drain_left > 0:
                n = self.socket.recv_into(chunk, min(len(chunk), self._drain_left))
                if n == 0:
                    return False
                self._drain_left -= n
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return True
        except (OSError, ValueError):
            return False
        return False

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
        req = self.req
        if req.chunked_read:
            req.rfile = _ChunkedBody(req.conn.rfile, req.server.max_request_body_size)
        req.conn.rfile.raw.begin_body()
        env = super().get_environ()
        if req.expect_continue:
            env["wsgi.input"] = _InvitedBody(req.rfile, req.invite_body)
        env[STOPPING] = req.server.stopping
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
            # A client that waits to be invited has sent nothing of its body: it may send it
            # anyway after a while, so the connection ends too.
            uninvited = req.expect_continue and not req.invited
            if req.chunked_read:
                unread = not getattr(req.rfile, "closed", True)
            else:
                # A small rest is read after the answer to keep the connection, if it has
                # arrived: a client that sends it a byte at a time must not hold the worker.
                remaining = getattr(req.rfile, "remaining", 0)
                unread = remaining > 0 and (
                    uninvited or remaining > _DRAIN_LIMIT or not req.conn.has_arrived(remaining)
                )
            if unread:
                req.close_connection = True
                req.conn.drain_at_close = True
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

    _full_logged = 0.0  # when the last "every worker is busy" line was logged

    def put(self, obj) -> None:
        super().put(obj)
        # Every worker busy (a paused player holds one for minutes): one more, up to max.
        if self._queue.qsize() <= self.idle:
            return
        if len(self._threads) < self.max:
            self._threads.append(self._spawn_worker())
        elif time.monotonic() - self._full_logged > 60:
            self._full_logged = time.monotonic()
            log.warning(
                "all %d worker threads are busy: requests wait their turn (server.max_threads)",
                len(self._threads),
            )

    def trim(self) -> None:
        """Let go of workers the load no longer needs, a quarter of the idle ones at a time."""
        spare = self.idle - self._queue.qsize()
        if spare > 0 and len(self._threads) > self.min:
            self.shrink(max(1, spare // 4))

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
        """Watch `conn` until its request head is in (or, draining, until it ends)."""
        conn.last_used = time.time()
        self._selector.register(conn.socket.fileno(), selectors.EVENT_READ, data=conn)

    def stop(self) -> None:
        """End the selector loop now: cheroot's waited for the select's timeout, up to half a
        second of every stop. A connection to our own socket ends the wait; the loop accepts
        it, finds the server no longer ready and closes it."""
        self._stop_requested = True
        listener = self.server.socket
        if listener is not None:
            try:
                with socket.socket(listener.family, socket.SOCK_STREAM) as touch:
                    touch.settimeout(1.0)
                    touch.connect(listener.getsockname())
            except OSError:
                pass  # the loop then ends at its timeout, as before
        super().stop()

    def _expire(self, threshold: float) -> None:
        now = time.monotonic()
        late, drained = [], []
        for fd, conn in self._selector.connections:
            if conn is self.server:
                continue
            if getattr(conn, "draining", False) and conn.drain_deadline <= now:
                drained.append((fd, conn))
            elif getattr(conn, "head_deadline", None) is not None and conn.head_deadline <= now:
                late.append((fd, conn))
        for fd, conn in drained:
            self._selector.unregister(fd)
            conn.close()
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
        self.server.requests.trim()

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
            if getattr(conn, "head_deadline", None) is not None or getattr(conn, "draining", False)
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
    body_timeout = 60.0  # a request body is judged over windows of this many seconds...
    body_min_rate = 1024  # ... and has stalled when one brought fewer bytes a second
    send_timeout = 300.0  # a client that reads nothing for this long has gone
    drain_timeout = 10.0  # an unread body after an answer is read and dropped this long...
    drain_limit = 64 << 20  # ... up to this many bytes
    shutdown_timeout = 3.0  # running requests get ~60 % of it, then their sockets are shut

    def __init__(
        self,
        bind_addr: tuple[str, int],
        wsgi_app: Callable,
        numthreads: int = 10,
        server_name: str | None = None,
        request_queue_size: int = 5,
        timeout: float = 300,
        max_threads: int | None = None,
    ) -> None:
        """``numthreads`` workers are always there; the pool grows up to ``max_threads``
        (default: four times as many) while all are busy."""
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
        workers = numthreads or 1
        self.requests = _Workers(self, min=workers, max=max(max_threads or 4 * workers, workers))
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
        if conn.draining:
            if conn.drain() and self.ready:
                self._connections.wait_for_head(conn)
            else:
                conn.close()
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
