"""Delivering a file's bytes: the download policy's decision turned into a ``302 Found`` to
PikPak's link, or into a proxied stream of the bytes; Range and If-Range read once.

A redirect answers at once with the link exactly as PikPak gave it (WsgiDAV's redirect helper
would re-quote it). A proxied answer is WsgiDAV's own GET, after the range was chosen here: it
then only ever sees that range written plainly (or none), and the mount's reader asks PikPak for
the same bytes. When PikPak's download server gives up in the middle of a proxied answer, a
stream that has sent nothing yet is a 502; one already under way ends short (its status has
gone out), with one warning in the log.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterable
from typing import Any, BinaryIO, Protocol
from urllib.parse import quote

from pikdav.pikpak.errors import StreamGone
from pikdav.pikpak.types import ByteReader
from pikdav.vfs.mount import Mount
from pikdav.vfs.tree import Entry

from . import ranges
from .errors import answering, dav_error
from .frontdoor import DELIVERY
from .logtext import client_text
from .policy import DownloadPolicy
from .transfers import STREAM, Transfer, Transfers

log = logging.getLogger(__name__)

# Conditional GETs (If-None-Match…) are answered by the gateway, never by the CDN.
_CONDITIONS = (
    "HTTP_IF_NONE_MATCH",
    "HTTP_IF_MODIFIED_SINCE",
    "HTTP_IF_MATCH",
    "HTTP_IF_UNMODIFIED_SINCE",
)


class Deliverable(Protocol):
    """A file resource (see the provider): what delivery needs to know of it."""

    path: str
    mount: Mount
    entry: Entry
    planned: ranges.ByteRange | None

    def get_content_length(self) -> int | None: ...

    def get_etag(self) -> str | None: ...

    def support_etag(self) -> bool: ...

    def support_ranges(self) -> bool: ...

    def get_last_modified(self) -> float | None: ...


def get_file(
    resource: Deliverable,
    policy: DownloadPolicy,
    environ: dict,
    start_response: Callable,
    default_handler: Callable,
    transfers: Transfers | None = None,
) -> Iterable[bytes]:
    """Answer a GET of a file: a redirect when the policy says so (counted in
    ``transfers``), else a proxied stream."""
    decision = policy.decide(environ)
    environ[DELIVERY] = decision
    entry = resource.entry
    redirectable = entry.size > 0 and not entry.uploading  # else served here, locally
    if redirectable and decision.redirect and not any(k in environ for k in _CONDITIONS):
        with answering(f"link for {resource.path}"):
            link = resource.mount.link(entry)
        if transfers is not None:
            transfers.redirected()
        start_response(
            "302 Found",
            [("Location", link.url), ("Content-Length", "0"), ("Cache-Control", "no-store")],
        )
        return [b""]
    plan_range(resource, environ)
    return default_handler(environ, start_response)


def plan_range(resource: Any, environ: dict) -> None:
    """Read Range and If-Range once (see :mod:`.ranges`) for a GET or HEAD of a file:
    WsgiDAV then sees the chosen range written plainly, or no Range, and a file resource
    keeps it as ``planned`` for its reader."""
    header = environ.pop("HTTP_RANGE", None)
    if_range = environ.pop("HTTP_IF_RANGE", None)
    size = resource.get_content_length()
    if header is None or size is None or not resource.support_ranges():
        return
    etag = resource.get_etag() if resource.support_etag() else None
    if not ranges.if_range_holds(if_range, etag, resource.get_last_modified()):
        return
    answer = ranges.plan(header, size)
    if answer is ranges.UNSATISFIABLE:
        # WsgiDAV answers this one 416 with "Content-Range: bytes */size", after the If-*
        # headers, which RFC 9110 evaluates first.
        environ["HTTP_RANGE"] = f"bytes={size}-"
    elif isinstance(answer, ranges.ByteRange):
        environ["HTTP_RANGE"] = answer.header()
        if hasattr(resource, "planned"):
            resource.planned = answer


# What a browser shows itself and cannot run: a proxied answer of these types is ``inline``
# (PikPak's CDN says ``attachment`` for everything, so a photo opened from the folder page was
# downloaded). HTML, SVG and XML stay downloads: shown inline they would run their scripts on
# the gateway's own origin, where the admin's login and the status page live.
_INLINE_PREFIXES = ("image/", "audio/", "video/")
_NEVER_INLINE = frozenset({"image/svg+xml"})
_INLINE_TYPES = frozenset({"application/pdf", "text/plain"})


def content_disposition(name: str, content_type: str) -> list[tuple[str, str]]:
    """The headers that tell a browser to show a proxied file (images, audio, video, PDF,
    plain text) or to save it under its name (anything else), as RFC 6266 writes them."""
    kind = content_type.partition(";")[0].strip().lower()
    shown = kind in _INLINE_TYPES or (
        kind.startswith(_INLINE_PREFIXES) and kind not in _NEVER_INLINE
    )
    value = f"{'inline' if shown else 'attachment'}; filename*=UTF-8''{quote(name, safe='')}"
    headers = [("Content-Disposition", value)]
    if shown:
        headers.append(("X-Content-Type-Options", "nosniff"))  # shown as what it says it is
    return headers


class ProxiedBody(ByteReader):
    """A stored file's reader as WsgiDAV reads it: a download server that gives up is a 502
    before the first byte and a short body after it."""

    def __init__(
        self, reader: BinaryIO, what: str, transfers: Transfers | None = None, **stream: Any
    ) -> None:
        """``transfers``: where the stream is shown while it runs (``stream``: its client,
        path and total, see :meth:`Transfers.start`)."""
        super().__init__()
        self._reader = reader
        self._what = what
        self._ended = False
        self._transfers = transfers
        self._transfer: Transfer | None = (
            transfers.start(STREAM, **stream) if transfers is not None else None
        )

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._reader.seek(offset, whence)

    def tell(self) -> int:
        return self._reader.tell()

    def read(self, size: int = -1) -> bytes:
        if self._ended:
            return b""
        try:
            data = self._reader.read(size)
        except StreamGone as exc:
            if not exc.delivered:
                raise dav_error(exc, self._what) from None
            log.warning("%s: %s; the client gets a short body", client_text(self._what), exc)
            self._ended = True  # nothing more: WsgiDAV ends the answer, the server the connection
            return b""
        if self._transfer is not None:
            self._transfer.advance(len(data))
        return data

    def close(self) -> None:
        if self._transfers is not None and self._transfer is not None:
            self._transfers.end(self._transfer)
            self._transfer = None
        self._reader.close()
        super().close()
