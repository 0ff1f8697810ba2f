"""The front door: what every request and every answer passes, whatever the app below does.

:class:`FrontDoor` is the outermost WSGI layer:

- a request body that stalls or ends early is the client's error (408, 400), not a traceback;
- the body of a GET or HEAD is ignored (WsgiDAV refused such a request with 415);
- an answer to HEAD carries no body, whatever its status (on a kept-alive connection the next
  request would read it as its answer: Kodi sends HEAD without credentials first);
- every status line carries its reason phrase (WsgiDAV writes ``503 Status`` for codes it
  does not know, and ``401 Not Authorized``);
- an exception is a plain 500 "internal error", its traceback in the log and never in the
  answer; one after the answer started ends the connection, so the client sees a short body;
- a stop of the server ends a running answer at its next block;
- one log line per request, with what the client sent escaped (see :mod:`.logtext`).

:class:`ErrorAnswers` takes the place of WsgiDAV's ``ErrorPrinter`` inside WsgiDAV: a
``DAVError`` becomes its status with a short plain-text reason (or the ``DAV:error`` XML of a
precondition), never with the text of a Python exception.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from cheroot.errors import MaxSizeExceeded
from wsgidav import util as wsgidav_util
from wsgidav.dav_error import DAVError
from wsgidav.mw.base_mw import BaseMiddleware

from pikdav.httpserver import END_CONNECTION, STOPPING, MalformedBody
from pikdav.pikpak.errors import redact

from .logtext import client_text, wsgi_text
from .policy import IPNetwork, request_client

log = logging.getLogger("pikdav.requests")

DELIVERY = "pikdav.delivery"  # environ key: how a GET was delivered (a policy Decision), logged
errors_log = logging.getLogger(__name__)

_PHRASES = {s.value: s.phrase for s in HTTPStatus}


def status_line(code: int, phrase: str = "") -> str:
    """``"503 Service Unavailable"``: the standard reason phrase of `code`, else `phrase`."""
    return f"{code} {_PHRASES.get(code) or phrase or 'Unknown'}"


def _normalised(status: str) -> str:
    code, _, phrase = status.partition(" ")
    return status_line(int(code), phrase.strip()) if code.isdigit() else status


def plain_answer(
    start_response: Callable, code: int, text: str, headers: Iterable[tuple[str, str]] = ()
) -> list[bytes]:
    """A short plain-text answer; `text` is the reason a user reads."""
    body = f"{text}\n".encode()
    start_response(
        status_line(code),
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("X-Content-Type-Options", "nosniff"),
            ("Cache-Control", "no-store"),
            *headers,
        ],
    )
    return [body]


def html_answer(start_response: Callable, body: bytes, *, head: bool = False) -> list[bytes]:
    """A page of pikdav's own (the status page, a folder for a browser): never cached, never
    framed, no scripts or outside resources; ``head``: the headers alone."""
    start_response(
        "200 OK",
        [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
            ("X-Frame-Options", "DENY"),
            ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'"),
            ("Referrer-Policy", "no-referrer"),
        ],
    )
    return [] if head else [body]


class RequestBody:
    """``wsgi.input`` whose failures say what the client did: a body that stalls is a 408, one
    that ends before its end (a chunked upload cut before its last chunk) a 400."""

    def __init__(self, raw: Any, end_connection: Callable[[], None] | None = None) -> None:
        self._raw = raw
        self._end_connection = end_connection

    def read(self, size: int | None = -1) -> bytes:
        return self._guarded(self._raw.read, size)

    def readline(self, size: int | None = -1) -> bytes:
        return self._guarded(self._raw.readline, size)

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        return self._guarded(self._raw.readlines, hint)

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line

    def _guarded(self, read: Callable, arg: Any) -> Any:
        try:
            return read(arg)
        except TimeoutError:
            error = DAVError(408, "the request body stalled; nothing was stored")
        except MaxSizeExceeded:
            error = DAVError(413, "the request body is too large")
        except MalformedBody as exc:
            error = DAVError(400, f"the request body is malformed: {exc}; nothing was stored")
        except (ValueError, OSError):
            # cheroot's chunked reader says ValueError for a body cut before its last chunk.
            error = DAVError(400, "the upload ended early; nothing was stored")
        if self._end_connection is not None:
            self._end_connection()  # the rest of the body cannot be read: no next request
        raise error


@dataclass
class _Exchange:
    method: str
    path: str
    status: str = "-"
    sent: int = 0
    note: str = ""


class _HeldResponse:
    """start_response held until the first block of body (or the end of an empty one), so
    that an error before it can still become a clean answer."""

    def __init__(self, start_response: Callable, exchange: _Exchange) -> None:
        self._start_response = start_response
        self._exchange = exchange
        self.status: str | None = None
        self.headers: list[tuple[str, str]] = []
        self.sent = False
        self._write: Callable | None = None

    def __call__(self, status: str, headers: list, exc_info: Any = None) -> Callable:
        if exc_info is not None and self.sent:
            raise exc_info[1].with_traceback(exc_info[2])
        self.status, self.headers = _normalised(status), list(headers)
        return self.write

    def send(self) -> None:
        if self.sent:
            return
        if self.status is None:
            raise RuntimeError("the application sent no status")
        self.sent = True
        self._exchange.status = self.status.split(" ", 1)[0]
        self._write = self._start_response(self.status, self.headers)

    def write(self, data: bytes) -> None:  # WSGI's legacy write(); WsgiDAV does not use it
        self.send()
        if self._exchange.method != "HEAD" and data:
            self._exchange.sent += len(data)
            self._write(data)


class FrontDoor:
    """The outermost WSGI layer (see the module docstring)."""

    def __init__(self, app: Callable, trusted_proxies: Iterable[IPNetwork] = ()) -> None:
        self.app = app
        self.trusted_proxies = tuple(trusted_proxies)

    def __call__(self, environ: dict, start_response: Callable) -> Iterator[bytes]:
        request_client(environ, self.trusted_proxies)  # once, for every layer below
        return self._answer(environ, start_response)

    def _answer(self, environ: dict, start_response: Callable) -> Iterator[bytes]:
        started = time.perf_counter()
        exchange = _Exchange(
            environ.get("REQUEST_METHOD", "-"), wsgi_text(environ.get("PATH_INFO", ""))
        )
        held = _HeldResponse(start_response, exchange)
        head = exchange.method == "HEAD"
        stopping = environ.get(STOPPING)
        body: Iterable[bytes] = ()
        try:
            body = self._open(environ, held)
            for chunk in body:
                if stopping is not None and stopping.is_set() and held.sent:
                    exchange.note = " (cut by the stop)"
                    _end_connection(environ)
                    break
                if not chunk:
                    continue
                held.send()
                if head:
                    continue  # a HEAD answer has no body, whatever the app gave
                exchange.sent += len(chunk)
                yield chunk
            held.send()
        except Exception as exc:
            if held.sent:
                errors_log.error(
                    "%s %s: the answer broke off after %d B",
                    client_text(exchange.method, 20),
                    client_text(exchange.path),
                    exchange.sent,
                    exc_info=True,
                )
                exchange.note = f" (broke off: {type(exc).__name__})"
                _end_connection(environ)
            else:
                errors_log.error(
                    "%s %s: internal error",
                    client_text(exchange.method, 20),
                    client_text(exchange.path),
                    exc_info=True,
                )
                held.sent = False
                answer = plain_answer(held, 500, "internal error")
                held.send()
                if not head:
                    exchange.sent += len(answer[0])
                    yield answer[0]
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    errors_log.warning("closing an answer failed", exc_info=True)
            self._log(environ, exchange, started)

    def _open(self, environ: dict, held: _HeldResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") in ("GET", "HEAD") and _has_body(environ):
            # A GET's body has no meaning (RFC 9110 §9.3.1); WsgiDAV answered it 415. The app
            # sees none; the server reads it after the answer, or drains it as the connection
            # closes (see pikdav.httpserver), within a bound either way.
            environ["CONTENT_LENGTH"] = "0"
            environ.pop("HTTP_TRANSFER_ENCODING", None)
            environ["wsgi.input"] = io.BytesIO()
        if "wsgi.input" in environ:
            environ["wsgi.input"] = RequestBody(environ["wsgi.input"], environ.get(END_CONNECTION))
        return self.app(environ, held)

    @staticmethod
    def _log(environ: dict, exchange: _Exchange, started: float) -> None:
        decision = environ.get(DELIVERY)
        how = ""
        if decision is not None and exchange.method == "GET":
            how = f" {decision.delivery.value} ({client_text(decision.reason)})"
        log.info(
            "%s %s %s %s %d B %.0f ms%s%s",
            request_client(environ) or "-",
            client_text(exchange.method, 20),
            client_text(redact(exchange.path)),
            exchange.status,
            exchange.sent,
            (time.perf_counter() - started) * 1000,
            how,
            exchange.note,
        )


def _has_body(environ: dict) -> bool:
    length = environ.get("CONTENT_LENGTH", "").strip()
    return (length not in ("", "0")) or "HTTP_TRANSFER_ENCODING" in environ


def _end_connection(environ: dict) -> None:
    end = environ.get(END_CONNECTION)
    if end is not None:
        end()


class ErrorAnswers(BaseMiddleware):
    """In WsgiDAV's middleware stack where its ``ErrorPrinter`` goes (see the module
    docstring). Like it, it holds the status until the first block of the body, so that an
    error raised before (in ``get_content``, say) still becomes a clean answer."""

    def __call__(self, environ: dict, start_response: Callable) -> Iterator[bytes]:
        held: list = []

        def hold(status: str, headers: list, exc_info: Any = None) -> None:
            held[:] = [status, headers]

        started = False
        body: Iterable[bytes] = ()
        try:
            body = self.next_app(environ, hold)
            for chunk in body:
                if not started:
                    start_response(*held)
                    started = True
                yield chunk
            if not started:
                start_response(*held)
            return
        except DAVError as exc:
            error = exc
        except Exception as exc:
            error = DAVError(500, src_exception=exc)
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()
        if started:
            # Too late for a status: end the connection, so the client sees a short body.
            errors_log.warning(
                "%s %s: the answer broke off: %s",
                environ["REQUEST_METHOD"],
                client_text(environ.get("PATH_INFO", "")),
                _reason(error),
            )
            _end_connection(environ)
            return
        yield from self._error_answer(environ, start_response, error)

    def _error_answer(
        self, environ: dict, start_response: Callable, error: DAVError
    ) -> Iterator[bytes]:
        if error.value >= 500 and error.src_exception is not None:
            cause = error.src_exception
            errors_log.error(
                "%s %s: internal error",
                environ["REQUEST_METHOD"],
                client_text(environ.get("PATH_INFO", "")),
                exc_info=(type(cause), cause, cause.__traceback__),
            )
            yield from plain_answer(start_response, 500, "internal error")
            return
        yield from status_answer(environ, start_response, error)


def _reason(error: DAVError) -> str:
    if isinstance(error.context_info, str) and error.context_info:
        # Reasons are ours, but may quote what the client sent (a path): escaped, and cut
        # well beyond the longest of ours (a human check's remedy, some 500 characters).
        return client_text(error.context_info, 2000)
    return _PHRASES.get(error.value, "error").lower()


class _ClientErrorsOnly(logging.Filter):
    """WsgiDAV logs every failed PUT with a traceback ("PUT: byte copy failed"), also one the
    client broke off; that is answered 4xx, and said on the request's log line."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (isinstance(exc, DAVError) and exc.value < 500)


def quiet_client_errors() -> None:
    """Install the filter of :class:`_ClientErrorsOnly` on WsgiDAV's request logger, once."""
    logger = logging.getLogger("wsgidav.request_server")
    if not any(isinstance(f, _ClientErrorsOnly) for f in logger.filters):
        logger.addFilter(_ClientErrorsOnly())


def status_answer(
    environ: dict,
    start_response: Callable,
    status: DAVError | int,
    *,
    add_headers: Iterable[tuple[str, str]] | None = None,
    is_head: bool = False,
) -> list[bytes]:
    """A status WsgiDAV answers by itself (201 to a PUT or a MKCOL, 204, its own refusals),
    built as every other answer of pikdav's: a short plain-text reason (or RFC 4918's
    ``DAV:error`` XML of a precondition), never WsgiDAV's HTML page."""
    error = status if isinstance(status, DAVError) else DAVError(status)
    headers = [*(add_headers or ()), *(error.add_headers or ())]
    if error.value in (204, 304):
        start_response(status_line(error.value), [("Content-Length", "0"), *headers])
        return []
    if error.err_condition is not None:
        content_type, body = error.get_response_page()
        start_response(
            status_line(error.value),
            [("Content-Type", content_type), ("Content-Length", str(len(body))), *headers],
        )
        return [] if is_head else [body]
    body = plain_answer(start_response, error.value, _reason(error), headers)
    return [] if is_head else body


def plain_status_pages() -> None:
    """Have WsgiDAV build its own status answers with :func:`status_answer` (its request
    handlers call ``wsgidav.util.send_status_response``)."""
    wsgidav_util.send_status_response = status_answer
