"""Streaming a file through the gateway: a lazy, seekable reader over the CDN.

WsgiDAV seeks to the start of the client's range and reads blocks until the range is
served. The reader opens the upstream request on the first read, passing the range on, and
when the connection drops or the link expires in the middle (PikPak links are short-lived
and IP-bound) it fetches a fresh link and resumes at the byte it had reached. Closing it
(WsgiDAV does when the client goes away) closes the upstream connection.
"""

from __future__ import annotations

import io
import logging

import requests
import urllib3

from pikdav.pikpak.errors import PikPakError
from pikdav.vfs.tree import DriveTree, Entry

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
        if self.pos >= self.entry.size:
            return b""
        want = self.entry.size - self.pos if size is None or size < 0 else size
        while True:
            try:
                if self._resp is None or self.pos >= self._end:
                    self._drop()
                    self._open(fresh_link=False)
                chunk = self._resp.raw.read(min(want, self._end - self.pos), decode_content=False)
                if not chunk:
                    raise UpstreamGone("the CDN closed the connection early")
                self.pos += len(chunk)
                return chunk
            except (*_STREAM_ERRORS, PikPakError) as exc:
                self._drop()
                self.resumes += 1
                if self.resumes > _RESUMES:
                    raise UpstreamGone(
                        f"giving up on {self.entry.name} at byte {self.pos}: {type(exc).__name__}"
                    ) from None
                log.info(
                    "stream of %s interrupted at byte %d (%s); resuming",
                    self.entry.name,
                    self.pos,
                    type(exc).__name__,
                )

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._drop()
        super().close()
