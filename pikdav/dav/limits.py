"""How much of the gateway one client's requests may take, decided in one place.

Memory: WsgiDAV reads an XML body whole and keeps dead properties whole, in memory, without a
bound: four PROPPATCHes of 50 MiB values grew a gateway by 285 MB for good, and a PROPFIND then
answered 52 MB. Every body but a PUT's is XML and small in any real client (a LOCK or a
PROPPATCH of a few properties is under 4 KiB), so it is capped here, as are dead properties
(for every store of them: in memory now, shared ones later).

Workers: a running request holds one of the server's workers, for minutes when it is a
paused player's stream or an upload that sends a byte now and then; 80 of them from one user
held every worker, and another user's PROPFIND (even ``/healthz``) waited a minute. So one
user, and one client address, may have only so many requests running (:class:`RequestCaps`);
beyond that a request is answered ``429`` with ``Retry-After`` at once (:class:`RequestSlots`),
and the server's pool grows for everyone else (see :mod:`pikdav.httpserver`).
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from wsgidav.dav_error import (
    HTTP_BAD_REQUEST,
    HTTP_INSUFFICIENT_STORAGE,
    HTTP_REQUEST_ENTITY_TOO_LARGE,
    DAVError,
)
from wsgidav.mw.base_mw import BaseMiddleware

from .logtext import client_text
from .policy import request_client

log = logging.getLogger(__name__)

XML_BODY_MAX = 1 << 20  # bytes: PROPFIND, PROPPATCH, LOCK… (PUT bodies are spooled to disk)
DEAD_PROPERTY_MAX = 64 << 10  # bytes of one dead property (its XML, name included)
DEAD_PROPERTIES_PER_RESOURCE_MAX = 1 << 20  # bytes of all dead properties of one resource
DEAD_PROPERTIES_MAX = 64 << 20  # bytes of all dead properties the gateway holds


def _in_units(size: int) -> str:
    return f"{size >> 20} MiB" if size >= 1 << 20 else f"{size >> 10} KiB"


def bound_request_body(environ: dict) -> None:
    """413 for a non-PUT body above :data:`XML_BODY_MAX`, decided from Content-Length before
    a byte is read; a chunked body is read here (up to the cap) and handed on with its
    length, which also lets WsgiDAV parse it (it reads only bodies with a Content-Length)."""
    if environ["REQUEST_METHOD"] == "PUT":
        return
    too_large = DAVError(
        HTTP_REQUEST_ENTITY_TOO_LARGE,
        f"request bodies other than a PUT's are limited to {_in_units(XML_BODY_MAX)}",
        add_headers=[("Connection", "close")],  # the rest of the body is never read
    )
    length = environ.get("CONTENT_LENGTH", "").strip()
    if length:
        if not length.isdigit():
            raise DAVError(HTTP_BAD_REQUEST, "Content-Length is not a number")
        if int(length) > XML_BODY_MAX:
            raise too_large
        return
    if "chunked" not in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return
    chunks, size = [], 0
    while size <= XML_BODY_MAX:
        chunk = environ["wsgi.input"].read(min(1 << 16, XML_BODY_MAX + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > XML_BODY_MAX:
        raise too_large
    body = b"".join(chunks)
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))


def check_dead_property(size: int, resource_total: int, store_total: int) -> None:
    """507 (RFC 4918 §9.2: no room to record the property) when storing a dead property of
    ``size`` bytes would pass a cap; the totals include it."""
    if size > DEAD_PROPERTY_MAX:
        reason = f"a dead property is limited to {_in_units(DEAD_PROPERTY_MAX)}"
    elif resource_total > DEAD_PROPERTIES_PER_RESOURCE_MAX:
        reason = (
            f"the dead properties of one item are limited to "
            f"{_in_units(DEAD_PROPERTIES_PER_RESOURCE_MAX)} in all"
        )
    elif store_total > DEAD_PROPERTIES_MAX:
        reason = f"the gateway holds at most {_in_units(DEAD_PROPERTIES_MAX)} of dead properties"
    else:
        return
    raise DAVError(HTTP_INSUFFICIENT_STORAGE, reason)


# --- requests running at once --------------------------------------------------------------------


@dataclass(frozen=True)
class RequestCaps:
    """Requests one DAV user, and one client address (all users and anonymous clients
    behind it), may have running at once; ``retry_after``: seconds said to one beyond."""

    per_user: int = 64
    per_address: int = 128
    retry_after: int = 5


class _Running:
    """Counts of running requests by ``(kind, name)``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], int] = {}

    def take(self, wanted: list[tuple[tuple[str, str], int]]) -> tuple[tuple[str, str], int] | None:
        """Count one more request under every key of ``wanted`` (key, cap); or, when a key
        is at its cap, count none and return that key and cap."""
        with self._lock:
            for key, cap in wanted:
                if self._counts.get(key, 0) >= cap:
                    return key, cap
            for key, _ in wanted:
                self._counts[key] = self._counts.get(key, 0) + 1
        return None

    def give_back(self, keys: Iterable[tuple[str, str]]) -> None:
        with self._lock:
            for key in keys:
                left = self._counts.get(key, 0) - 1
                if left > 0:
                    self._counts[key] = left
                else:
                    self._counts.pop(key, None)


class _Counted:
    """An answer's body that gives its request's slots back when it is closed (when the last
    byte went out, or the client left)."""

    def __init__(self, body: Iterable[bytes], release: Callable[[], None]) -> None:
        self._body = body
        self._release: Callable[[], None] | None = release

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()


class RequestSlots(BaseMiddleware):
    """In WsgiDAV's middleware stack right after the authenticator: a request beyond its
    user's or its address's cap of running requests (see :class:`RequestCaps`) is answered
    ``429 Too Many Requests`` with ``Retry-After``, before its body is read."""

    _QUIET = 60.0  # seconds between two log lines about one user or address at its cap

    def __init__(self, wsgidav_app: Any, next_app: Any, config: dict[str, Any]) -> None:
        super().__init__(wsgidav_app, next_app, config)
        self.caps: RequestCaps = config["pikdav"].get("caps") or RequestCaps()
        self._trusted_proxies = config["pikdav"]["auth"].trusted_proxies
        self.running = _Running()
        self._logged: dict[tuple[str, str], float] = {}

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        wanted = [
            (("address", request_client(environ, self._trusted_proxies)), self.caps.per_address)
        ]
        user = environ.get("wsgidav.auth.user_name")
        if user:
            wanted.append((("user", user), self.caps.per_user))
        full = self.running.take(wanted)
        if full is not None:
            (kind, name), cap = full
            self._log_full(kind, name, cap)
            # Do not read the refused request's body (the server drains it at the close).
            environ["wsgidav.some_input_read"] = environ["wsgidav.all_input_read"] = 1
            raise DAVError(
                429,
                f"this {kind} already has {cap} requests running, the most it may have at "
                f"once; try again in {self.caps.retry_after} s",
                add_headers=[("Retry-After", str(self.caps.retry_after))],
            )
        keys = [key for key, _ in wanted]
        try:
            body = self.next_app(environ, start_response)
        except BaseException:
            self.running.give_back(keys)
            raise
        return _Counted(body, lambda: self.running.give_back(keys))

    def _log_full(self, kind: str, name: str, cap: int) -> None:
        now = time.monotonic()
        if now - self._logged.get((kind, name), -self._QUIET) < self._QUIET:
            return
        if len(self._logged) > 1000:
            self._logged.clear()
        self._logged[(kind, name)] = now
        log.warning(
            "%s %s has %d requests running, its cap (server.requests_per_%s): more get 429",
            kind,
            client_text(name),
            cap,
            kind,
        )
