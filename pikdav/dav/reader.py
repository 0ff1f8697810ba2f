"""Streaming a file through the gateway: a lazy, seekable reader over the CDN.

WsgiDAV seeks to the start of the client's range and reads blocks until the range is
served. The reader opens the upstream request on the first read, passing the range on, and
when the connection drops or the link expires in the middle (PikPak links are short-lived
and IP-bound) it fetches a fresh link and resumes at the byte it had reached. Closing it
(WsgiDAV does when the client goes away) closes the upstream connection.

When the CDN cannot be had after the resumes, a stream that has not sent a byte yet fails with
a 502; one already under way ends early (one warning in the log): the status has gone out, and
the server closes the connection on the short body, which is what the client can understand.
A server stop ends the stream the same way, at once: the upstream socket is shut from the
stopping thread, so a read waiting on a slow CDN returns.
"""

from __future__ import annotations

import io
import logging
import socket

import requests
import urllib3
from wsgidav.dav_error import HTTP_BAD_GATEWAY, DAVError

from pikdav.httpserver import StopSignal
from pikdav.pikpak.errors import PikPakError
from pikdav.vfs.tree import DriveTree, Entry

from .logtext import client_text

log = logging.getLogger(__name__)

_RESUMES = 5
_STREAM_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, OSError)


class UpstreamGone(OSError):
    """The CDN could not deliver the rest of the file after several attempts."""


class RangeReader(io.RawIOBase):
    def __init__(
        self,
        tree: DriveTree,
        entry: Entry,
        http: requests.Session,
        planned: tuple[int, int] | None = None,
        timeout: float = 60.0,
        verify: bool | str = True,
        user_agent: str = "",
        stop: StopSignal | None = None,
    ) -> None:
        super().__init__()
        self.tree = tree
        self.entry = entry
        self.http = http
        self.planned = planned  # (start, end exclusive) of the client's range, if any
        self.timeout = timeout
        self.verify = verify
        self.user_agent = user_agent
        self.pos = 0
        self._end = entry.size
        self._resp: requests.Response | None = None
        self.resumes = 0
        self.delivered = 0  # bytes handed to WsgiDAV
        self._stop = stop
        self._unsubscribe = stop.subscribe(self._cut_upstream) if stop is not None else None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.entry.size}[whence]
        target = max(0, base + offset)
        if target != self.pos:
            self._drop()
        self.pos = target
        return self.pos

    def _open(self, fresh_link: bool) -> None:
        end = self.entry.size
        if self.planned is not None and self.planned[0] <= self.pos < self.planned[1]:
            end = self.planned[1]
        self._end = end
        for attempt in range(2):
            link = self.tree.link(self.entry, fresh=fresh_link or attempt > 0)
            headers = {"Range": f"bytes={self.pos}-{end - 1}"}
            if self.user_agent:
                headers["User-Agent"] = self.user_agent
            resp = self.http.get(
                link.url,
                headers=headers,
                stream=True,
                verify=self.verify,
                timeout=(10, self.timeout),
            )
            if resp.status_code in (403, 404, 410) and attempt == 0:
                # Expired, or issued to another address: a fresh link, once.
                resp.close()
                continue
            if resp.status_code == 206 or (resp.status_code == 200 and self.pos == 0):
                self._resp = resp
                return
            resp.close()
            raise UpstreamGone(f"the CDN answered {resp.status_code} for a ranged read")
        raise UpstreamGone("the CDN refused a fresh link")

    def _drop(self) -> None:
        if self._resp is not None:
            self._resp.close()
            self._resp = None

    def read(self, size: int = -1) -> bytes:
        if self.pos >= self.entry.size or self._stopping():
            return b""
        want = self.entry.size - self.pos if size is None or size < 0 else size
        while True:
            try:
                if self._resp is None or self.pos >= self._end:
                    self._drop()
                    self._open(fresh_link=False)
                chunk = self._resp.raw.read(min(want, self._end - self.pos), decode_content=False)
                if self._stopping():
                    return b""  # what came may be cut short by the shut socket
                if not chunk:
                    raise UpstreamGone("the CDN closed the connection early")
                self.pos += len(chunk)
                self.delivered += len(chunk)
                return chunk
            except (*_STREAM_ERRORS, PikPakError) as exc:
                self._drop()
                if self._stopping():
                    return b""
                self.resumes += 1
                if self.resumes > _RESUMES:
                    return self._give_up(exc)
                log.info(
                    "stream of %s interrupted at byte %d (%s); resuming",
                    client_text(self.entry.name),
                    self.pos,
                    type(exc).__name__,
                )

    def _give_up(self, exc: Exception) -> bytes:
        what = f"{client_text(self.entry.name)} at byte {self.pos} after {_RESUMES} resumes"
        if not self.delivered:
            log.warning("stream of %s: giving up (%s)", what, type(exc).__name__)
            raise DAVError(
                HTTP_BAD_GATEWAY, "PikPak's download server did not deliver the file; try again"
            )
        log.warning(
            "stream of %s: giving up (%s); the client gets a short body",
            what,
            type(exc).__name__,
        )
        self.pos = self.entry.size  # nothing more to read: WsgiDAV ends the answer here
        return b""

    def _stopping(self) -> bool:
        return self._stop is not None and self._stop.is_set()

    def _cut_upstream(self) -> None:
        """From the stopping thread: wake a read that waits on the CDN."""
        resp = self._resp
        sock = getattr(getattr(resp.raw, "connection", None), "sock", None) if resp else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._drop()
        super().close()
