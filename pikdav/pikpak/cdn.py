"""Reading a file's bytes from PikPak's download servers: a lazy, seekable reader over a link.

The reader asks for the bytes it is told to (``start`` to ``end``) on its first read, passing
the range on, and when the connection drops or the link expires in the middle (PikPak's links
are short-lived and bound to the address that asked for them) it takes a fresh link and
resumes at the byte it had reached, within :data:`~.retry.STREAM_RESUMES`. When the server
cannot be had after that, it raises :class:`StreamGone` saying how much was delivered: the
caller decides whether that is an error answer (nothing sent yet) or a short body. A stop of
the server ends a read at once: the upstream socket is shut from the stopping thread.
"""

from __future__ import annotations

import io
import logging
import socket
import time
from collections.abc import Callable
from typing import Protocol

import requests
import urllib3

from .errors import CdnAnswer, PikPakError, StreamGone, cause_in_words, cdn_answer
from .http import host_of, other_domain
from .retry import STREAM_RESUMES, RetryPolicy
from .types import ByteReader, Link

log = logging.getLogger(__name__)

#: What stored files are read through (built by :func:`~.http.cdn_session`).
CdnSession = requests.Session

STREAM_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, OSError)
# The most one read of a stream returns: the bytes on their way to a client are outside the
# memory budget (pikpak.memory), so they are kept small (WsgiDAV asks for 1 MiB at a time).
READ_MOST = 512 << 10


class Stopping(Protocol):
    """The server's stop: set once; a subscriber is called when it is (see httpserver)."""

    def is_set(self) -> bool: ...

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]: ...


def ranged_get(
    http: requests.Session,
    link: Link,
    start: int,
    end: int,
    *,
    timeout: float = 60.0,
    name: str = "",
    host_failed: Callable[[str], None] | None = None,
) -> requests.Response:
    """Bytes ``start`` to ``end`` (exclusive) of ``link``, streamed: from the link's host,
    else its fallback (the host PikPak gave, when the link was rewritten to another), else —
    for a host that does not resolve or connect — the same URL on PikPak's other domain.
    ``host_failed(url)`` hears of a rewritten host that failed."""
    urls = [link.url, link.fallback] if link.fallback else [link.url]
    swapped = False
    while True:
        url = urls.pop(0)
        try:
            resp = http.get(
                url,
                headers={"Range": f"bytes={start}-{end - 1}"},
                stream=True,
                timeout=(10, timeout),
            )
        except requests.ConnectionError as exc:
            if not urls and not swapped and (other := other_domain(url)):
                swapped = True
                urls.append(other)
            if not urls:
                raise
            _failed_over(url, cause_in_words(exc), urls[0], name)
            if url != link.fallback and host_failed is not None:
                host_failed(url)
            continue
        if urls and url == link.url and resp.status_code not in (200, 206):
            # A rewritten host that does not serve the link: PikPak's own host does (an
            # expired link fails there too, and is then asked for afresh).
            resp.close()
            _failed_over(url, f"answered {resp.status_code}", urls[0], name)
            if resp.status_code >= 500 and host_failed is not None:
                host_failed(url)
            continue
        return resp


def _failed_over(url: str, why: str, then: str, name: str) -> None:
    log.warning(
        "download host %s failed for %r (%s); reading from %s",
        host_of(url),
        name,
        why,
        host_of(then),
    )


class LinkBytes(ByteReader):
    """Bytes ``start`` to ``end`` (exclusive) of a file of ``size`` bytes, read through
    ``link(fresh)`` (the file's link; ``fresh`` asks PikPak for a new one) with the CDN
    session ``http`` (see :func:`~.http.cdn_session`); what every reader of a link holds.
    ``stop`` (the server's) calls ``_stopped`` from the stopping thread; ``host_failed(url)``
    hears of a rewritten link's host that failed."""

    def __init__(
        self,
        http: requests.Session,
        size: int,
        link: Callable[[bool], Link],
        *,
        start: int = 0,
        end: int | None = None,
        name: str = "",
        timeout: float = 60.0,
        stop: Stopping | None = None,
        host_failed: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__()
        self.http = http
        self.size = size
        self.link = link
        self.planned = (start, size if end is None else end)
        self.name = name
        self.timeout = timeout
        self.pos = 0
        self.delivered = 0  # bytes handed to the caller
        self._host_failed = host_failed
        self._stop = stop
        self._unsubscribe = stop.subscribe(self._stopped) if stop is not None else None

    def tell(self) -> int:
        return self.pos

    def _get(self, link: Link, start: int, end: int) -> requests.Response:
        return ranged_get(
            self.http,
            link,
            start,
            end,
            timeout=self.timeout,
            name=self.name,
            host_failed=self._host_failed,
        )

    def _stopping(self) -> bool:
        return self._stop is not None and self._stop.is_set()

    def _stopped(self) -> None:
        raise NotImplementedError

    def _leave_stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None


class LinkReader(LinkBytes):
    """A link's bytes through one connection (see :class:`LinkBytes` and the module)."""

    def __init__(
        self,
        http: requests.Session,
        size: int,
        link: Callable[[bool], Link],
        *,
        start: int = 0,
        end: int | None = None,
        name: str = "",
        timeout: float = 60.0,
        stop: Stopping | None = None,
        resumes: RetryPolicy = STREAM_RESUMES,
        host_failed: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(
            http,
            size,
            link,
            start=start,
            end=end,
            name=name,
            timeout=timeout,
            stop=stop,
            host_failed=host_failed,
        )
        self._end = size
        self._resp: requests.Response | None = None
        self._policy = resumes
        self.reads = 0  # reads that opened or resumed the upstream request
        self.waited = 0.0  # seconds spent waiting for the download server's bytes
        self.on_close: Callable[[LinkReader], None] | None = None

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        target = max(0, base + offset)
        if target != self.pos:
            self._drop()
        self.pos = target
        return self.pos

    def _open(self) -> None:
        start, end = self.planned
        self._end = end if start <= self.pos < end else self.size
        for fresh in (False, True):
            resp = self._get(self.link(fresh), self.pos, self._end)
            answer = cdn_answer(resp.status_code, whole_file=self.pos == 0)
            if answer is CdnAnswer.STALE_LINK and not fresh:
                resp.close()
                continue
            if answer is CdnAnswer.BYTES:
                self._resp = resp
                return
            resp.close()
            raise StreamGone(
                f"the download server answered {resp.status_code} for a ranged read",
                self.delivered,
            )

    def _drop(self) -> None:
        if self._resp is not None:
            self._resp.close()
            self._resp = None

    def read(self, size: int = -1) -> bytes:
        if self.pos >= self.size or self._stopping():
            return b""
        want = self.size - self.pos if size is None or size < 0 else size
        while True:
            try:
                if self._resp is None or self.pos >= self._end:
                    self._drop()
                    self.reads += 1
                    self._open()
                began = time.monotonic()
                chunk = self._resp.raw.read(
                    min(want, READ_MOST, self._end - self.pos), decode_content=False
                )
                self.waited += time.monotonic() - began
                if self._stopping():
                    return b""  # what came may be cut short by the shut socket
                if not chunk:
                    raise StreamGone("the download server closed early", self.delivered)
                self.pos += len(chunk)
                self.delivered += len(chunk)
                return chunk
            except (*STREAM_ERRORS, PikPakError) as exc:
                self._drop()
                if self._stopping():
                    return b""
                if self._policy.exhausted(self.reads, 0.0):
                    raise self._gone(exc) from None
                log.info(
                    "stream of %r interrupted at byte %d (%s); resuming",
                    self.name,
                    self.pos,
                    described(exc),
                )

    def _gone(self, exc: BaseException) -> StreamGone:
        return StreamGone(
            f"giving up on {self.name!r} at byte {self.pos} after {self.reads - 1} resumes "
            f"({described(exc)})",
            self.delivered,
        )

    def _stopped(self) -> None:
        """From the stopping thread: wake a read that waits on the download server."""
        resp = self._resp
        sock = getattr(getattr(resp.raw, "connection", None), "sock", None) if resp else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    @property
    def rate(self) -> float:
        """Bytes per second the connection gave while the caller waited for it (0: too few
        bytes to say); a caller slower than the server makes this high, not low."""
        return self.delivered / self.waited if self.delivered >= 1 << 20 and self.waited else 0.0

    def close(self) -> None:
        self._leave_stop()
        self._drop()
        if self.on_close is not None and not self.closed:
            self.on_close(self)
        super().close()


def described(exc: BaseException) -> str:
    """A failure in words for the log, never with the link (it is signed)."""
    return str(exc) if isinstance(exc, PikPakError) else cause_in_words(exc)
