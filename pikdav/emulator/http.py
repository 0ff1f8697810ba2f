"""A small request/response layer over WSGI, just enough for the emulator's handlers."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs


class Request:
    def __init__(self, environ: dict[str, Any]) -> None:
        self.environ = environ
        self.method: str = environ["REQUEST_METHOD"].upper()
        self.path: str = environ.get("PATH_INFO", "") or "/"
        self.query_string: str = environ.get("QUERY_STRING", "")
        self.query: dict[str, str] = {
            k: v[0] for k, v in parse_qs(self.query_string, keep_blank_values=True).items()
        }
        self.scheme: str = environ.get("wsgi.url_scheme", "http")
        self.host: str = (environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")).lower()
        self.client_ip: str = environ.get("REMOTE_ADDR", "")
        self._body: bytes | None = None

    @property
    def hostname(self) -> str:
        """The Host header without its port."""
        host = self.host
        if host.startswith("["):
            return host.split("]")[0] + "]"
        return host.rsplit(":", 1)[0] if ":" in host else host

    def header(self, name: str, default: str = "") -> str:
        key = "HTTP_" + name.upper().replace("-", "_")
        if name.lower() == "content-type":
            key = "CONTENT_TYPE"
        elif name.lower() == "content-length":
            key = "CONTENT_LENGTH"
        return self.environ.get(key, default) or default

    @property
    def content_length(self) -> int | None:
        raw = self.environ.get("CONTENT_LENGTH")
        try:
            return int(raw) if raw not in (None, "") else None
        except ValueError:
            return None

    @property
    def stream(self):
        return self.environ["wsgi.input"]

    def body(self, limit: int = 16 * 1024 * 1024) -> bytes:
        """The whole body (bounded): for JSON, forms and XML, never for object data."""
        if self._body is None:
            length = self.content_length
            if length is not None:
                self._body = self.stream.read(min(length, limit)) if length else b""
            else:
                chunks, total = [], 0
                while total < limit:
                    chunk = self.stream.read(min(65536, limit - total))
                    if not chunk:
                        break
                    chunks.append(chunk)
                    total += len(chunk)
                self._body = b"".join(chunks)
        return self._body

    def params(self) -> dict[str, Any]:
        """Body fields: JSON whatever the Content-Type (as PikPak accepts), else form-encoded."""
        raw = self.body()
        if not raw.strip():
            return {}
        try:
            value = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            try:
                form = parse_qs(raw.decode("utf-8"), keep_blank_values=True)
            except UnicodeDecodeError as exc:
                raise BadBody("body is neither JSON nor a form") from exc
            if not form:
                raise BadBody("body is neither JSON nor a form") from None
            return {k: v[0] for k, v in form.items()}
        if not isinstance(value, dict):
            raise BadBody("JSON body must be an object")
        return value


class BadBody(ValueError):
    """The request body could not be parsed."""


@dataclass
class Response:
    status: int = 200
    body: bytes | Iterable[bytes] = b""
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: list | None = None) -> Response:
        payload = json.dumps(data, separators=(",", ":")).encode()
        return cls(
            status, payload, [("Content-Type", "application/json; charset=utf-8"), *(headers or [])]
        )

    @classmethod
    def xml(cls, text: str, status: int = 200, headers: list | None = None) -> Response:
        return cls(status, text.encode(), [("Content-Type", "application/xml"), *(headers or [])])

    @classmethod
    def empty(cls, status: int = 204, headers: list | None = None) -> Response:
        return cls(status, b"", list(headers or []))

    def status_line(self) -> str:
        try:
            phrase = HTTPStatus(self.status).phrase
        except ValueError:
            phrase = "Status"
        return f"{self.status} {phrase}"
